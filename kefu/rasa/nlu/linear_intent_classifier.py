"""A linear intent classifier on character n-grams, blended with DIET's ranking.

On small Chinese data sets a regularised linear model over character n-grams is hard
to beat, while DIET brings what it learns from the sequence. Each makes different
mistakes, so the ranking this component writes is a weighted mean of the two
probability estimates (`weight` for the linear model). It runs after DIETClassifier
and before the FallbackClassifier, which then judges the blended confidence.

The model is stored as plain arrays and JSON (no pickle): loading a model file can
run no code (see CVE-2024-49375).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from kefu.domain.char_linear import CharLinearModel
from kefu.domain.risk import sentences

logger = logging.getLogger(__name__)
SENTENCE_INTENTS = "sentence_intents"

MODEL_NAME = "linear_intent_classifier"


def _text(message: Message) -> str:
    return (message.get(TEXT) or "").lower()


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class LinearIntentClassifier(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "C": 1.0,  # inverse regularisation of the logistic regression
            "class_weight": "balanced",  # rare intents weigh as much as common ones
            "char_ngrams": [1, 3],
            # Sublinear tf-idf of the n-gram counts instead of raw counts: a long
            # message's many n-grams no longer outweigh the few that name its intent.
            "sublinear_tf": False,
            "weight": 0.8,  # the linear model's share of the blend; DIET has the rest
            "ranking_length": 10,
            "max_iter": 3000,
            # Also read each sentence of a message of several on its own
            # (`sentence_intents`): the risk scanner uses them on long messages.
            "sentence_intents": True,
        }

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: Optional[CharLinearModel] = None,
    ) -> None:
        weight = float(config["weight"])
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"LinearIntentClassifier: weight must be in [0, 1], not {weight}")
        self.config = config
        self.weight = weight
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
    ) -> LinearIntentClassifier:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        examples = [m for m in training_data.intent_examples if m.get(INTENT)]
        labels = [str(m.get(INTENT)) for m in examples]
        if len(set(labels)) < 2:
            logger.warning("LinearIntentClassifier: fewer than two intents, nothing to learn.")
            return self._resource
        self.model = CharLinearModel.fit(
            [_text(m) for m in examples],
            labels,
            self.config["char_ngrams"],
            C=float(self.config["C"]),
            class_weight=self.config["class_weight"],
            max_iter=int(self.config["max_iter"]),
            sublinear_tf=bool(self.config.get("sublinear_tf", False)),
        )
        self.persist()
        return self._resource

    def persist(self) -> None:
        if self.model is None:
            return
        with self._storage.write_to(self._resource) as directory:
            self.model.save(directory, MODEL_NAME)

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> LinearIntentClassifier:
        try:
            with model_storage.read_from(resource) as directory:
                model = CharLinearModel.load(directory, MODEL_NAME, config["char_ngrams"])
        except (ValueError, OSError, KeyError) as e:
            logger.warning(f"LinearIntentClassifier: nothing trained to load ({e}).")
            return cls(config, model_storage, resource)
        return cls(config, model_storage, resource, model)

    @property
    def classes(self) -> List[str]:
        return self.model.classes if self.model else []

    def probabilities(self, messages: List[Message]) -> np.ndarray:
        assert self.model is not None
        return self.model.probabilities([_text(m) for m in messages])

    def process(self, messages: List[Message]) -> List[Message]:
        if self.model is None or not messages:
            return messages
        for message, row in zip(messages, self.probabilities(messages), strict=True):
            scores = {n: self.weight * float(p) for n, p in zip(self.classes, row, strict=True)}
            for ranked in message.get(INTENT_RANKING_KEY) or []:
                name = ranked.get(INTENT_NAME_KEY)
                if name:
                    share = (1.0 - self.weight) * float(ranked.get(PREDICTED_CONFIDENCE_KEY, 0.0))
                    scores[name] = scores.get(name, 0.0) + share
            ranking = sorted(
                ({INTENT_NAME_KEY: n, PREDICTED_CONFIDENCE_KEY: c} for n, c in scores.items()),
                key=lambda r: -float(r[PREDICTED_CONFIDENCE_KEY]),  # type: ignore[arg-type]
            )[: int(self.config["ranking_length"])]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        if self.config.get("sentence_intents", True):
            for message in messages:
                message.set(SENTENCE_INTENTS, self.sentence_intents(message), add_to_output=True)
        return messages

    def sentence_intents(self, message: Message) -> List[Dict[str, Any]]:
        """The linear model's top intent for each sentence of a longer message."""
        text = message.get(TEXT) or ""
        spans = sentences(text)
        if len(spans) < 2:
            return []
        assert self.model is not None
        rows = self.model.probabilities([text[s:e] for s, e in spans])
        out = []
        for (start, end), row in zip(spans, rows, strict=True):
            best = int(np.argmax(row))
            out.append(
                {
                    "text": text[start:end],
                    "span": [start, end],
                    "intent": self.classes[best],
                    "confidence": round(float(row[best]), 3),
                }
            )
        return out
