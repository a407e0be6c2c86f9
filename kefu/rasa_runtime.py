"""Fixes for Rasa 3.6, installed once per Rasa process by kefu's NLG.

1. The action-server deadline. Rasa waits 300 s for a custom action and offers no
   setting; kefu sets it from KEFU_ACTION_TIMEOUT_S (8 s by default: under the desk's
   10 s, above an order lookup's 5 s).
2. The hot path, profiled with cProfile (`handle_message` in-process):
   a. 64% of a message's time went into `RemoteAction._validate_action_result`,
      because `jsonschema.validate()` checks the constant response schema against the
      draft 2020-12 meta-schema on every call. The validator is compiled once; the
      schema, the validation and the error message are Rasa's own. (Later: each
      event was still tried against all 23 branches of the schema's `oneOf`; a valid
      response is now confirmed against the one branch its event type names, and
      anything else goes to the full schema for Rasa's verdict and message.)
   b. Next, TEDPolicy: 35% of the time, 2.6 predictions per message. Its input is the
      dialogue states of the last `max_history` turns (intents, entity names, slots,
      loop, previous action: discrete values, not the visitor's words), and its
      inference is deterministic, so a prediction is kept per distinct state sequence
      (an LRU, `KEFU_TED_CACHE` entries, 0 turns it off). States that carry text
      (end-to-end training) are never cached.
   c. `Event.resolve_by_type` walked every subclass of Event for each stored event
      of each turn; the name → class map is built once.
3. Second profile (cProfile, 441 messages of the bench's conversations in-process):
   a. Rasa runs each graph (one NLU parse, 2-3 policy predictions per message)
      through dask's scheduler, which orders the tasks anew and walks the needs
      recursively on every run: 9% of a message. The graphs are small and run in one
      thread anyway, so kefu runs the same nodes in a fixed topological order
      computed once per target list; inputs, outputs and exceptions as with dask.
   b. Each policy rebuilds the dialogue states from scratch by replaying every event
      of the tracker (15% of a message, three times per prediction). The states of one
      tracker snapshot are kept on the tracker until its next event, and each caller
      gets its own copy (featurizers edit them in place); a policy's featurizer copies
      only the last `max_history` states it keeps.
   c. Calling DIET's (and TED's) `tf.function` matched the inputs against its
      signature in Python on every call, about a third of the TensorFlow time. The
      signature is fixed (Rasa builds it with dynamic shapes), so kefu calls its one
      concrete function directly: the same graph and the same outputs.
   d. Rasa opened a new HTTP session, and so a new connection, for every custom-action
      call; kefu keeps one session per endpoint and event loop, whose idle connections
      close after 2 s (under the action server's 5 s keep-alive, so a request never goes
      out on a connection the server is closing). Closed at exit.
   e. DIET's input joins each featurizer's sparse matrix through scipy's generic `bmat`;
      for two COO matrices kefu builds the very same matrix directly.
"""

from __future__ import annotations

import atexit
import functools
import os
import threading
from collections import OrderedDict
from typing import Any, Dict, Hashable, List, Optional, Tuple

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


@functools.lru_cache(maxsize=1)
def event_validators() -> Dict[str, Any]:
    """One validator per event type: the event schema with its `oneOf` resolved.

    Every branch of Rasa's `oneOf` pins `event` to a different constant, so an event
    matches exactly one branch or none: checking the branch its `event` names gives
    the same verdict as trying all 23.
    """
    from rasa.shared.utils.schemas.events import EVENT_SCHEMA

    cls = type(action_result_validator())
    common = {key: value for key, value in EVENT_SCHEMA.items() if key != "oneOf"}
    validators = {}
    for branch in EVENT_SCHEMA["oneOf"]:
        schema = {**common, "allOf": [branch]}
        cls.check_schema(schema)
        validators[branch["properties"]["event"]["const"]] = cls(schema)
    return validators


def surely_valid(result: Any) -> bool:
    """True only when Rasa's schema accepts the response; False means "ask the schema"."""
    if type(result) is not dict:
        return False
    events = result.get("events", [])
    responses = result.get("responses", [])
    if type(events) is not list or type(responses) is not list:
        return False
    if any(type(response) is not dict for response in responses):
        return False
    validators = event_validators()
    for event in events:
        if type(event) is not dict or type(event.get("event")) is not str:
            return False
        validator = validators.get(event["event"])
        if validator is None or not validator.is_valid(event):
            return False
    return True


def _validate_action_result(self: Any, result: Dict[str, Any]) -> bool:
    from jsonschema import ValidationError
    from rasa.shared.constants import DOCS_BASE_URL

    if surely_valid(result):
        return True
    try:
        action_result_validator().validate(result)  # Rasa's verdict and error message
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


def _graph_plan(schema: Any, targets: Tuple[str, ...]) -> List[Tuple[str, Tuple[str, ...]]]:
    """The nodes the targets need, each after its needs, with the names of its needs."""
    minimal = schema.minimal_graph_schema(list(targets))
    order: List[Tuple[str, Tuple[str, ...]]] = []
    seen: set = set()

    def visit(name: str) -> None:
        if name in seen or name not in minimal.nodes:
            return  # done, or an input placeholder
        seen.add(name)
        needs = tuple(minimal.nodes[name].needs.values())
        for need in needs:
            visit(need)
        order.append((name, needs))

    for name in minimal.nodes:
        visit(name)
    return order


def _run_graph(
    self: Any, inputs: Optional[Dict[str, Any]] = None, targets: Optional[List[str]] = None
) -> Dict[str, Any]:
    """DaskGraphRunner.run without dask: the same nodes, results and errors."""
    from rasa.engine.exceptions import GraphRunError

    run_targets = targets if targets else self._graph_schema.target_names
    plans = self.__dict__.setdefault("_kefu_plans", {})
    key = tuple(run_targets)
    plan = plans.get(key)
    if plan is None:
        plan = plans[key] = _graph_plan(self._graph_schema, key)
    values: Dict[str, Any] = {}
    if inputs:
        for input_name, input_value in inputs.items():
            if isinstance(input_value, str) and (
                input_value in values or any(input_value == name for name, _ in plan)
            ):
                raise GraphRunError(
                    f"Input value '{input_value}' clashes with a node name. Make sure "
                    f"that none of the input names passed to the `run` method are the "
                    f"same as node names in the graph schema."
                )
            values[input_name] = (input_name, input_value)
    nodes = self._instantiated_nodes
    try:
        for name, needs in plan:
            if name in values:
                continue  # an input given under a node's name replaces it, as in dask
            # As in dask, a need that names neither a node nor an input is passed as is.
            values[name] = nodes[name](*(values.get(need, need) for need in needs))
        return dict(values[target] for target in run_targets)
    except RuntimeError as e:
        raise GraphRunError("Error running runner.") from e


_original_past_states: Any = None
_original_rasa_predict: Any = None


def _rasa_predict(self: Any, batch_in: Tuple[Any, ...]) -> Dict[str, Any]:
    """RasaModel._rasa_predict through the concrete function of its tf.function."""
    if self._run_eagerly or not self.prepared_for_prediction or self._tf_predict_step is None:
        return _original_rasa_predict(self, batch_in)  # type: ignore[no-any-return]
    import tensorflow as tf
    from keras.utils import tf_utils
    from rasa.shared.constants import DIAGNOSTIC_DATA

    cached = self.__dict__.get("_kefu_concrete_predict")
    if cached is None:
        concrete = self._tf_predict_step.get_concrete_function()
        cached = (concrete, concrete.structured_input_signature[0][0])
        self.__dict__["_kefu_concrete_predict"] = cached
    concrete, spec = cached
    flat = [tf.convert_to_tensor(tensor) for tensor in batch_in]
    if len(flat) != len(spec) or not all(
        t.dtype == s.dtype and s.shape.is_compatible_with(t.shape)
        for t, s in zip(flat, spec, strict=True)
    ):
        return _original_rasa_predict(self, batch_in)  # let tf.function say what is wrong
    outputs = tf_utils.sync_to_numpy_or_python_type(
        concrete._call_flat(flat, concrete.captured_inputs)
    )
    if DIAGNOSTIC_DATA in outputs:
        outputs[DIAGNOSTIC_DATA] = self._empty_lists_to_none_in_dict(outputs[DIAGNOSTIC_DATA])
    return outputs  # type: ignore[no-any-return]


def copy_states(states: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """States are dicts of sub-state dicts of strings and tuples: two levels to copy."""
    return [
        {key: dict(sub) if isinstance(sub, dict) else sub for key, sub in state.items()}
        for state in states
    ]


def shared_past_states(
    tracker: Any,
    domain: Any,
    omit_unset_slots: bool = False,
    ignore_rule_only_turns: bool = False,
    rule_only_data: Optional[Dict[str, Any]] = None,
) -> List[Dict[str, Any]]:
    """The tracker's past states, computed once per snapshot of its events.

    The list is shared: callers copy what they may change.
    """
    frozen_rule_data = freeze_states(rule_only_data)
    if frozen_rule_data is None and rule_only_data is not None:
        return _original_past_states(  # type: ignore[no-any-return]
            tracker, domain, omit_unset_slots, ignore_rule_only_turns, rule_only_data
        )
    events = tracker.events
    last = events[-1] if events else None
    snapshot = tracker.__dict__.get("_kefu_states")
    if (
        snapshot is None
        or snapshot[0] is not events
        or snapshot[1] != len(events)
        or snapshot[2] is not last
        or snapshot[3] is not domain
    ):
        snapshot = (events, len(events), last, domain, {})
        tracker.__dict__["_kefu_states"] = snapshot
    key = (bool(omit_unset_slots), bool(ignore_rule_only_turns), frozen_rule_data)
    states = snapshot[4].get(key)
    if states is None:
        states = _original_past_states(
            tracker, domain, omit_unset_slots, ignore_rule_only_turns, rule_only_data
        )
        snapshot[4][key] = states
    return states  # type: ignore[no-any-return]


def _past_states(
    self: Any,
    domain: Any,
    omit_unset_slots: bool = False,
    ignore_rule_only_turns: bool = False,
    rule_only_data: Optional[Dict[str, Any]] = None,
) -> List[Dict[str, Any]]:
    """DialogueStateTracker.past_states from the snapshot cache, as the caller's copy."""
    return copy_states(
        shared_past_states(self, domain, omit_unset_slots, ignore_rule_only_turns, rule_only_data)
    )


_original_prediction_states: Any = None


def _prediction_states(
    self: Any,
    trackers: List[Any],
    domain: Any,
    use_text_for_last_user_input: bool = False,
    ignore_rule_only_turns: bool = False,
    rule_only_data: Optional[Dict[str, Any]] = None,
    ignore_action_unlikely_intent: bool = False,
) -> List[List[Dict[str, Any]]]:
    """MaxHistoryTrackerFeaturizer.prediction_states, copying only the states it keeps.

    Rasa's steps in Rasa's order; the copy is taken after slicing to `max_history`,
    because only the kept states are edited (`_choose_last_user_input`).
    """
    from rasa.core.featurizers.tracker_featurizers import TrackerFeaturizer
    from rasa.shared.core.trackers import DialogueStateTracker

    if type(self)._create_states is not TrackerFeaturizer._create_states:
        return _original_prediction_states(  # type: ignore[no-any-return]
            self,
            trackers,
            domain,
            use_text_for_last_user_input,
            ignore_rule_only_turns,
            rule_only_data,
            ignore_action_unlikely_intent,
        )
    trackers_as_states = []
    for tracker in trackers:
        if type(tracker).past_states is DialogueStateTracker.past_states:
            states = shared_past_states(
                tracker, domain, False, ignore_rule_only_turns, rule_only_data
            )
        else:  # a tracker class with its own past_states (training's cached trackers)
            states = tracker.past_states(
                domain, ignore_rule_only_turns=ignore_rule_only_turns, rule_only_data=rule_only_data
            )
        if ignore_action_unlikely_intent:
            states = self._remove_action_unlikely_intent_from_states(states)
        trackers_as_states.append(copy_states(self.slice_state_history(states, self.max_history)))
    self._choose_last_user_input(trackers_as_states, use_text_for_last_user_input)
    return trackers_as_states


# --- one HTTP session per endpoint and event loop -----------------------------------

KEEPALIVE_S = 2.0  # under Sanic's (the action server's) 5 s keep-alive timeout
_sessions: Dict[Tuple[int, int], Tuple[Any, Any, Any]] = {}
_original_session: Any = None


class _Borrowed:
    """`async with endpoint.session()` without closing the shared session at the end."""

    def __init__(self, session: Any) -> None:
        self.session = session

    async def __aenter__(self) -> Any:
        return self.session

    async def __aexit__(self, *exc: Any) -> None:
        return None


def _endpoint_session(self: Any) -> Any:
    """EndpointConfig.session: Rasa's settings, one pooled session per loop."""
    import asyncio

    import aiohttp
    from rasa.utils import endpoints

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _original_session(self)  # outside a loop: Rasa's own, for the caller to close
    key = (id(self), id(loop))
    entry = _sessions.get(key)
    if entry is not None and entry[0] is self and entry[1] is loop and not entry[2].closed:
        return _Borrowed(entry[2])
    auth = None
    if self.basic_auth:
        auth = aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"])
    session = aiohttp.ClientSession(
        headers=self.headers,
        auth=auth,
        timeout=aiohttp.ClientTimeout(total=endpoints.DEFAULT_REQUEST_TIMEOUT),
        connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_S),
    )
    _sessions[key] = (self, loop, session)
    return _Borrowed(session)


def close_sessions() -> None:
    """Closes the pooled sessions' connections; at exit, when no loop may run any more."""
    while _sessions:
        _, (_, _, session) = _sessions.popitem()
        connector = session.connector
        if connector is not None:
            connector._close()  # synchronous; does nothing on a closed loop but mark it closed


# --- DIET's sparse input ---------------------------------------------------------------

_original_combine_sparse: Any = None


def _combine_sparse_features(self: Any, additional_features: Any) -> None:
    """Features._combine_sparse_features: scipy's hstack result, built directly for COO."""
    import numpy as np
    import scipy.sparse as sp
    from scipy.sparse._sputils import get_index_dtype, upcast

    a, b = self.features, additional_features.features
    if type(a) is not sp.coo_matrix or type(b) is not sp.coo_matrix or a.shape[0] != b.shape[0]:
        return _original_combine_sparse(self, additional_features)  # type: ignore[no-any-return]
    shape = (a.shape[0], a.shape[1] + b.shape[1])
    index = get_index_dtype(maxval=max(shape))
    # bmat's layout: the first block's entries, then the second's, columns shifted.
    data = np.concatenate((a.data, b.data)).astype(upcast(a.dtype, b.dtype), copy=False)
    row = np.concatenate((a.row, b.row)).astype(index, copy=False)
    col = np.concatenate((a.col, b.col + a.shape[1])).astype(index, copy=False)
    self.features = sp.coo_matrix((data, (row, col)), shape=shape)
    self._cached_fingerprint = None
    return None


def install() -> None:
    """Idempotent: the compiled schema check, the action-server deadline, TED's cache,
    the event-type map, the graph runner without dask, the states cache, the
    concrete prediction functions, pooled HTTP sessions and direct sparse joins."""
    global _installed, _original_ted_predict, _original_resolve_by_type, _ted_cache_entries
    global _original_past_states, _original_rasa_predict, _original_prediction_states
    global _original_session, _original_combine_sparse
    if _installed:
        return
    _ted_cache_entries = ted_cache_size()
    from rasa.core.actions import action
    from rasa.core.featurizers.tracker_featurizers import MaxHistoryTrackerFeaturizer
    from rasa.core.policies.ted_policy import TEDPolicy
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.shared.core.events import Event
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.shared.nlu.training_data.features import Features
    from rasa.utils.endpoints import EndpointConfig
    from rasa.utils.tensorflow.models import RasaModel

    action.RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]
    if TEDPolicy.predict_action_probabilities is not _ted_predict_action_probabilities:
        _original_ted_predict = TEDPolicy.predict_action_probabilities
        TEDPolicy.predict_action_probabilities = _ted_predict_action_probabilities  # type: ignore[method-assign]
    if Event.resolve_by_type is not _resolve_by_type:
        _original_resolve_by_type = Event.resolve_by_type
        Event.resolve_by_type = staticmethod(_resolve_by_type)  # type: ignore[assignment]
    DaskGraphRunner.run = _run_graph  # type: ignore[method-assign]
    if DialogueStateTracker.past_states is not _past_states:
        _original_past_states = DialogueStateTracker.past_states
        DialogueStateTracker.past_states = _past_states  # type: ignore[method-assign]
    if MaxHistoryTrackerFeaturizer.prediction_states is not _prediction_states:
        _original_prediction_states = MaxHistoryTrackerFeaturizer.prediction_states
        MaxHistoryTrackerFeaturizer.prediction_states = _prediction_states  # type: ignore[method-assign]
    if RasaModel._rasa_predict is not _rasa_predict:
        _original_rasa_predict = RasaModel._rasa_predict
        RasaModel._rasa_predict = _rasa_predict  # type: ignore[method-assign]
    if EndpointConfig.session is not _endpoint_session:
        _original_session = EndpointConfig.session
        EndpointConfig.session = _endpoint_session  # type: ignore[method-assign]
        atexit.register(close_sessions)
    if Features._combine_sparse_features is not _combine_sparse_features:
        _original_combine_sparse = Features._combine_sparse_features
        Features._combine_sparse_features = _combine_sparse_features  # type: ignore[method-assign]
    # Read by RemoteAction.run at call time (`timeout=DEFAULT_REQUEST_TIMEOUT`).
    action.DEFAULT_REQUEST_TIMEOUT = action_timeout_s()  # type: ignore[attr-defined]
    _installed = True
