"""A class-balanced logistic regression on character n-gram counts, stored without pickle.

Shared by the linear intent classifier and the FAQ selector: on small Chinese data
a regularised linear model over character n-grams is hard to beat, trains in about
a second, and its file (NumPy arrays and JSON) can run no code when loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np


def vectoriser(
    char_ngrams: Sequence[int],
    vocabulary: Optional[Dict[str, int]] = None,
    sublinear_tf: bool = False,
) -> Any:
    """Counts of character n-grams of the (simplified, lower-cased) text; with
    `sublinear_tf`, 1 + log(count) weighted by inverse document frequency and scaled
    to unit length, so neither a long reply nor a repeated n-gram outweighs the rest."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    kind = TfidfVectorizer if sublinear_tf else CountVectorizer
    options = {"sublinear_tf": True} if sublinear_tf else {}
    return kind(
        analyzer="char",
        ngram_range=(int(char_ngrams[0]), int(char_ngrams[1])),
        lowercase=False,
        vocabulary=vocabulary,
        dtype=np.float32,
        **options,
    )


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


@dataclass
class CharLinearModel:
    classes: List[str]
    coef: np.ndarray
    intercept: np.ndarray
    vectoriser: Any

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        char_ngrams: Sequence[int],
        C: float,
        class_weight: Any,
        max_iter: int,
        sublinear_tf: bool = False,
        solver: str = "lbfgs",
    ) -> "CharLinearModel":
        """`sublinear_tf`: see vectoriser() (such a model is not saved: no idf is stored).
        `solver`: sklearn's; "sag" fits many classes on tf-idf features much faster."""
        from sklearn.linear_model import LogisticRegression

        vec = vectoriser(char_ngrams, sublinear_tf=sublinear_tf)
        features = vec.fit_transform([t.lower() for t in texts])
        model = LogisticRegression(
            C=C, class_weight=class_weight, max_iter=max_iter, solver=solver, random_state=0
        )
        model.fit(features, list(labels))
        return cls(
            classes=[str(c) for c in model.classes_],
            coef=model.coef_.astype(np.float32),
            intercept=model.intercept_.astype(np.float32),
            vectoriser=vec,
        )

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        features = self.vectoriser.transform([t.lower() for t in texts])
        scores = features @ self.coef.T + self.intercept
        if scores.shape[1] == 1:  # two classes: sklearn keeps one row of weights
            scores = np.hstack([-scores, scores])
        return softmax(np.asarray(scores))

    def save(self, directory: Path, name: str) -> None:
        if hasattr(self.vectoriser, "idf_"):
            raise ValueError("a model on tf-idf features is fitted per process, not saved")
        np.savez(directory / f"{name}.npz", coef=self.coef, intercept=self.intercept)
        meta = {
            "classes": self.classes,
            "vocabulary": {k: int(v) for k, v in self.vectoriser.vocabulary_.items()},
        }
        (directory / f"{name}.json").write_text(json.dumps(meta, ensure_ascii=False), "utf-8")

    @classmethod
    def load(cls, directory: Path, name: str, char_ngrams: Sequence[int]) -> "CharLinearModel":
        """Raises OSError, KeyError or ValueError when nothing usable was stored."""
        meta = json.loads((directory / f"{name}.json").read_text(encoding="utf-8"))
        with np.load(directory / f"{name}.npz", allow_pickle=False) as arrays:
            coef, intercept = arrays["coef"], arrays["intercept"]
        return cls(meta["classes"], coef, intercept, vectoriser(char_ngrams, meta["vocabulary"]))
