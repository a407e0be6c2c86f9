"""Fixes for Rasa 3.6, installed once per Rasa process by kefu's NLG.

1. The action-server deadline. Rasa waits 300 s for a custom action and offers no
   setting; kefu sets it from KEFU_ACTION_TIMEOUT_S (8 s by default: under the desk's
   10 s, above an order lookup's 5 s).
2. The hot path, profiled with cProfile (`handle_message` in-process):
   a. 64% of a message's time went into `RemoteAction._validate_action_result`,
      because `jsonschema.validate()` checks the constant response schema against the
      draft 2020-12 meta-schema on every call. The validator is compiled once; the
      schema, the validation and the error message are Rasa's own.
   b. Next, TEDPolicy: 35% of the time, 2.6 predictions per message. Its input is the
      dialogue states of the last `max_history` turns (intents, entity names, slots,
      loop, previous action: discrete values, not the visitor's words), and its
      inference is deterministic, so a prediction is kept per distinct state sequence
      (an LRU, `KEFU_TED_CACHE` entries, 0 turns it off). States that carry text
      (end-to-end training) are never cached.
   c. `Event.resolve_by_type` walked every subclass of Event for each stored event
      of each turn; the name → class map is built once.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import OrderedDict
from typing import Any, Dict, Hashable, Optional, Tuple

_installed = False
DEFAULT_ACTION_TIMEOUT_S = 8
DEFAULT_TED_CACHE = 4096


@functools.lru_cache(maxsize=1)
def action_result_validator() -> Any:
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    spec = RemoteAction.action_response_format_spec()
    cls = validator_for(spec)
    cls.check_schema(spec)  # once, not per action call
    return cls(spec)


def _validate_action_result(self: Any, result: Dict[str, Any]) -> bool:
    from jsonschema import ValidationError
    from rasa.shared.constants import DOCS_BASE_URL

    try:
        action_result_validator().validate(result)
        return True
    except ValidationError as e:
        e.message += (
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise e


def action_timeout_s() -> int:
    raw = os.environ.get("KEFU_ACTION_TIMEOUT_S", "")
    try:
        return max(1, int(float(raw))) if raw else DEFAULT_ACTION_TIMEOUT_S
    except ValueError:
        return DEFAULT_ACTION_TIMEOUT_S


def ted_cache_size() -> int:
    raw = os.environ.get("KEFU_TED_CACHE", "")
    try:
        return max(0, int(raw)) if raw else DEFAULT_TED_CACHE
    except ValueError:
        return DEFAULT_TED_CACHE


class PredictionCache:
    """A bounded LRU of TED's predictions by dialogue-state sequence, with counters."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._entries: "OrderedDict[Hashable, Any]" = OrderedDict()
        self._lock = threading.Lock()  # Rasa's graph may run a policy off the loop thread

    def get(self, key: Hashable) -> Any:
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


_TEXT_KEYS = frozenset({"text", "action_text"})


def freeze_states(states: Any) -> Optional[Hashable]:
    """A hashable copy of dialogue states, or None when a state carries text."""
    if isinstance(states, dict):
        if _TEXT_KEYS.intersection(states):
            return None
        items = []
        for key in sorted(states):
            frozen = freeze_states(states[key])
            if frozen is None and states[key] is not None:
                return None
            items.append((key, frozen))
        return tuple(items)
    if isinstance(states, (list, tuple)):
        out = []
        for item in states:
            frozen = freeze_states(item)
            if frozen is None and item is not None:
                return None
            out.append(frozen)
        return ("seq", tuple(out))
    if isinstance(states, (str, int, float, bool)) or states is None:
        return states
    return None  # anything else (features, arrays): not cached


_original_ted_predict: Any = None
_ted_cache_entries = DEFAULT_TED_CACHE  # read from the environment once, at install()


def _ted_cache(policy: Any) -> Optional[PredictionCache]:
    cache = policy.__dict__.get("_kefu_prediction_cache")
    if cache is None:
        if _ted_cache_entries == 0:
            return None
        cache = PredictionCache(_ted_cache_entries)
        policy.__dict__["_kefu_prediction_cache"] = cache  # per loaded model
    return cache  # type: ignore[no-any-return]


def _ted_predict_action_probabilities(
    self: Any,
    tracker: Any,
    domain: Any,
    rule_only_data: Optional[Dict[str, Any]] = None,
    precomputations: Any = None,
    **kwargs: Any,
) -> Any:
    from rasa.core.policies.policy import SupportedData
    from rasa.shared.nlu.constants import TEXT

    def compute() -> Any:
        return _original_ted_predict(
            self, tracker, domain, rule_only_data, precomputations, **kwargs
        )

    cache = _ted_cache(self)
    if cache is None or self.model is None or self.only_e2e or TEXT in self.fake_features:
        return compute()
    ml_only = self.supported_data() == SupportedData.ML_DATA
    states = self.featurizer.prediction_states(
        [tracker],
        domain,
        use_text_for_last_user_input=False,
        ignore_rule_only_turns=ml_only,
        rule_only_data=rule_only_data,
        ignore_action_unlikely_intent=ml_only,
    )
    key = freeze_states(states)
    if key is None:
        return compute()
    hit: Optional[Tuple[Any, ...]] = cache.get(key)
    if hit is not None:
        probabilities, diagnostic_data = hit
        return self._prediction(list(probabilities), diagnostic_data=diagnostic_data)
    prediction = compute()
    if not prediction.is_end_to_end_prediction and not prediction.optional_events:
        cache.put(key, (tuple(prediction.probabilities), prediction.diagnostic_data))
    return prediction


_event_types: Dict[str, Any] = {}
_original_resolve_by_type: Any = None


def _resolve_by_type(type_name: str, default: Any = None) -> Any:
    cls = _event_types.get(type_name)
    if cls is not None:
        return cls
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    # Built once; rebuilt on a miss, in case a subclass was defined since.
    for candidate in all_subclasses(Event):
        _event_types.setdefault(candidate.type_name, candidate)
    cls = _event_types.get(type_name)
    if cls is not None:
        return cls
    return _original_resolve_by_type(type_name, default)


def install() -> None:
    """Idempotent: the compiled schema check, the action-server deadline, TED's cache
    and the event-type map."""
    global _installed, _original_ted_predict, _original_resolve_by_type, _ted_cache_entries
    if _installed:
        return
    _ted_cache_entries = ted_cache_size()
    from rasa.core.actions import action
    from rasa.core.policies.ted_policy import TEDPolicy
    from rasa.shared.core.events import Event

    action.RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]
    if TEDPolicy.predict_action_probabilities is not _ted_predict_action_probabilities:
        _original_ted_predict = TEDPolicy.predict_action_probabilities
        TEDPolicy.predict_action_probabilities = _ted_predict_action_probabilities  # type: ignore[method-assign]
    if Event.resolve_by_type is not _resolve_by_type:
        _original_resolve_by_type = Event.resolve_by_type
        Event.resolve_by_type = staticmethod(_resolve_by_type)  # type: ignore[assignment]
    # Read by RemoteAction.run at call time (`timeout=DEFAULT_REQUEST_TIMEOUT`).
    action.DEFAULT_REQUEST_TIMEOUT = action_timeout_s()  # type: ignore[attr-defined]
    _installed = True
