"""TEDPolicy with a cache of its predictions by dialogue-state sequence.

TED was 35% of a message's time, 2.6 predictions per message. Its input is the dialogue
states of the last `max_history` turns (intents, entity names, slots, loop, previous
action: discrete values, not the visitor's words) and its inference is deterministic, so
a prediction is kept per distinct state sequence (an LRU of KEFU_TED_CACHE entries, 0
turns it off). States that carry text (end-to-end) are never cached. A subclass named in
config.yml: Rasa's own extension point, nothing patched.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any, Dict, Hashable, Optional, Tuple

from rasa.core.policies.policy import PolicyPrediction, SupportedData
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import TEXT

from kefu.rasa.states import freeze_states

DEFAULT_TED_CACHE = 4096


def ted_cache_size() -> int:
    raw = os.environ.get("KEFU_TED_CACHE", "")
    try:
        return max(0, int(raw)) if raw else DEFAULT_TED_CACHE
    except ValueError:
        return DEFAULT_TED_CACHE


class PredictionCache:
    """A bounded LRU of predictions by state sequence, with counters."""

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


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.POLICY_WITH_END_TO_END_SUPPORT, is_trainable=True
)
class CachedTEDPolicy(TEDPolicy):
    """TEDPolicy; predictions for a state sequence seen before come from the cache."""

    _prediction_cache: Optional[PredictionCache] = None

    def prediction_cache(self) -> Optional[PredictionCache]:
        cache = self.__dict__.get("_prediction_cache")
        if cache is None:
            size = ted_cache_size()
            if size == 0:
                return None
            cache = self._prediction_cache = PredictionCache(size)  # per loaded model
        return cache

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: Optional[Dict[str, Any]] = None,
        precomputations: Any = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        def compute() -> PolicyPrediction:
            return super(CachedTEDPolicy, self).predict_action_probabilities(
                tracker, domain, rule_only_data, precomputations, **kwargs
            )

        cache = self.prediction_cache()
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
