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

import json
import logging
from typing import Any, Dict, List, Optional, Sequence, Text

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

logger = logging.getLogger(__name__)

ARRAYS = "linear_intent_classifier.npz"
META = "linear_intent_classifier.json"


def _text(message: Message) -> str:
    return (message.get(TEXT) or "").lower()


def _vectoriser(char_ngrams: Sequence[int], vocabulary: Optional[Dict[str, int]] = None) -> Any:
    """Counts of character n-grams of the (simplified, lower-cased) text."""
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(
        analyzer="char",
        ngram_range=(int(char_ngrams[0]), int(char_ngrams[1])),
        lowercase=False,
        vocabulary=vocabulary,
        dtype=np.float32,
    )


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class LinearIntentClassifier(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "C": 1.0,  # inverse regularisation of the logistic regression
            "class_weight": "balanced",  # rare intents weigh as much as common ones
            "char_ngrams": [1, 3],
            "weight": 0.8,  # the linear model's share of the blend; DIET has the rest
            "ranking_length": 10,
            "max_iter": 3000,
        }

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        classes: Optional[List[str]] = None,
        coef: Optional[np.ndarray] = None,
        intercept: Optional[np.ndarray] = None,
        vectoriser: Any = None,
    ) -> None:
        weight = float(config["weight"])
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"LinearIntentClassifier: weight must be in [0, 1], not {weight}")
        self.config = config
        self.weight = weight
        self._storage = model_storage
        self._resource = resource
        self.classes = classes or []
        self.coef = coef
        self.intercept = intercept
        self.vectoriser = vectoriser

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
        from sklearn.linear_model import LogisticRegression

        examples = [m for m in training_data.intent_examples if m.get(INTENT)]
        labels = [str(m.get(INTENT)) for m in examples]
        if len(set(labels)) < 2:
            logger.warning("LinearIntentClassifier: fewer than two intents, nothing to learn.")
            return self._resource
        vectoriser = _vectoriser(self.config["char_ngrams"])
        features = vectoriser.fit_transform([_text(m) for m in examples])
        model = LogisticRegression(
            C=float(self.config["C"]),
            class_weight=self.config["class_weight"],
            max_iter=int(self.config["max_iter"]),
        )
        model.fit(features, labels)
        self.classes = [str(c) for c in model.classes_]
        self.coef = model.coef_.astype(np.float32)
        self.intercept = model.intercept_.astype(np.float32)
        self.vectoriser = vectoriser
        self.persist()
        return self._resource

    def persist(self) -> None:
        if self.vectoriser is None or self.coef is None or self.intercept is None:
            return
        with self._storage.write_to(self._resource) as directory:
            np.savez(directory / ARRAYS, coef=self.coef, intercept=self.intercept)
            meta = {
                "classes": self.classes,
                "vocabulary": {k: int(v) for k, v in self.vectoriser.vocabulary_.items()},
            }
            (directory / META).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

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
                meta = json.loads((directory / META).read_text(encoding="utf-8"))
                with np.load(directory / ARRAYS, allow_pickle=False) as arrays:
                    coef, intercept = arrays["coef"], arrays["intercept"]
        except (ValueError, OSError, KeyError) as e:
            logger.warning(f"LinearIntentClassifier: nothing trained to load ({e}).")
            return cls(config, model_storage, resource)
        vectoriser = _vectoriser(config["char_ngrams"], meta["vocabulary"])
        return cls(config, model_storage, resource, meta["classes"], coef, intercept, vectoriser)

    def probabilities(self, messages: List[Message]) -> np.ndarray:
        assert self.vectoriser is not None and self.coef is not None
        features = self.vectoriser.transform([_text(m) for m in messages])
        return _softmax(features @ self.coef.T + self.intercept)

    def process(self, messages: List[Message]) -> List[Message]:
        if self.coef is None or not messages:
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
        return messages
