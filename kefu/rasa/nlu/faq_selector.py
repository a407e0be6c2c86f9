"""Picks the FAQ topic of a shop question: Rasa's response-selector output, from a
linear model on character n-grams.

Rasa's own ResponseSelector is a second DIET model; on a few hundred Chinese
questions a logistic regression on character 1-3-grams is as accurate and trains
in about a second, which keeps `rasa train` inside its two-minute budget. It
writes the parse result's `response_selector` exactly as Rasa's does, so the
standard retrieval action `utter_faq` sends `utter_faq/<topic>`.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import (
    RESPONSE_SELECTOR_PREDICTION_KEY,
    RESPONSE_SELECTOR_PROPERTY_NAME,
    RESPONSE_SELECTOR_RANKING_KEY,
    RESPONSE_SELECTOR_RESPONSES_KEY,
    RESPONSE_SELECTOR_RETRIEVAL_INTENTS,
    RESPONSE_SELECTOR_UTTER_ACTION_KEY,
)
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_RESPONSE_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from kefu.domain.char_linear import CharLinearModel

logger = logging.getLogger(__name__)
MODEL_NAME = "faq_selector"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class FaqSelector(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "retrieval_intent": "faq",
            "C": 2.0,
            "class_weight": "balanced",
            "char_ngrams": [1, 3],
            # Sublinear tf-idf of the n-gram counts instead of raw counts (the story
            # around a question no longer outweighs the words that name its topic).
            "sublinear_tf": False,
            "max_iter": 3000,
            "ranking_length": 5,
        }

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: Optional[CharLinearModel] = None,
    ) -> None:
        self.config = config
        self._storage = model_storage
        self._resource = resource
        self.model = model

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> FaqSelector:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        intent = self.config["retrieval_intent"]
        examples = [
            m
            for m in training_data.intent_examples
            if m.get(INTENT) == intent and m.get(INTENT_RESPONSE_KEY)
        ]
        labels = [str(m.get(INTENT_RESPONSE_KEY)) for m in examples]
        if len(set(labels)) < 2:
            logger.warning("FaqSelector: fewer than two FAQ topics, nothing to learn.")
            return self._resource
        self.model = CharLinearModel.fit(
            [m.get(TEXT) or "" for m in examples],
            labels,
            self.config["char_ngrams"],
            C=float(self.config["C"]),
            class_weight=self.config["class_weight"],
            max_iter=int(self.config["max_iter"]),
            sublinear_tf=bool(self.config.get("sublinear_tf", False)),
        )
        with self._storage.write_to(self._resource) as directory:
            self.model.save(directory, MODEL_NAME)
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> FaqSelector:
        try:
            with model_storage.read_from(resource) as directory:
                model = CharLinearModel.load(directory, MODEL_NAME, config["char_ngrams"])
        except (ValueError, OSError, KeyError) as e:
            logger.warning(f"FaqSelector: nothing trained to load ({e}).")
            return cls(config, model_storage, resource)
        return cls(config, model_storage, resource, model)

    def process(self, messages: List[Message]) -> List[Message]:
        if self.model is None or not messages:
            return messages
        intent = self.config["retrieval_intent"]
        rows = self.model.probabilities([m.get(TEXT) or "" for m in messages])
        for message, row in zip(messages, rows, strict=True):
            order = row.argsort()[::-1][: int(self.config["ranking_length"])]
            ranking = [
                {
                    INTENT_RESPONSE_KEY: self.model.classes[i],
                    PREDICTED_CONFIDENCE_KEY: float(row[i]),
                }
                for i in order
            ]
            best = ranking[0]
            key = str(best[INTENT_RESPONSE_KEY])
            selector = message.get(RESPONSE_SELECTOR_PROPERTY_NAME) or {}
            selector[RESPONSE_SELECTOR_RETRIEVAL_INTENTS] = [intent]
            selector[intent] = {
                RESPONSE_SELECTOR_PREDICTION_KEY: {
                    RESPONSE_SELECTOR_RESPONSES_KEY: [],
                    PREDICTED_CONFIDENCE_KEY: best[PREDICTED_CONFIDENCE_KEY],
                    INTENT_RESPONSE_KEY: key,
                    RESPONSE_SELECTOR_UTTER_ACTION_KEY: f"utter_{key}",
                },
                RESPONSE_SELECTOR_RANKING_KEY: ranking,
            }
            message.set(RESPONSE_SELECTOR_PROPERTY_NAME, selector, add_to_output=True)
        return messages
