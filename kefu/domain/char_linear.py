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


def sublinear_tfidf(counts: Any, idf: np.ndarray) -> Any:
    """What sklearn's TfidfVectorizer(sublinear_tf=True) computes from raw counts:
    1 + log(count), times the inverse document frequency, scaled to unit length. Done
    by hand so a saved model needs only its vocabulary and idf (arrays, no pickle)."""
    from sklearn.preprocessing import normalize

    counts = counts.tocsr(copy=True).astype(np.float32)
    np.log(counts.data, counts.data)
    counts.data += 1.0
    return normalize(counts.multiply(idf.reshape(1, -1)).tocsr(), norm="l2", copy=False)


@dataclass
class CharLinearModel:
    classes: List[str]
    coef: np.ndarray
    intercept: np.ndarray
    vectoriser: Any  # counts of character n-grams
    idf: Optional[np.ndarray] = None  # set: features are sublinear tf-idf of the counts

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
        """`sublinear_tf`: see vectoriser() (the idf is kept, and saved with the model).
        `solver`: sklearn's; "sag" fits many classes on tf-idf features much faster."""
        from sklearn.linear_model import LogisticRegression

        vec = vectoriser(char_ngrams)
        features = vec.fit_transform([t.lower() for t in texts])
        idf = None
        if sublinear_tf:
            from sklearn.feature_extraction.text import TfidfTransformer

            idf = TfidfTransformer(sublinear_tf=True).fit(features).idf_.astype(np.float32)
            features = sublinear_tfidf(features, idf)
        model = LogisticRegression(
            C=C, class_weight=class_weight, max_iter=max_iter, solver=solver, random_state=0
        )
        model.fit(features, list(labels))
        return cls(
            classes=[str(c) for c in model.classes_],
            coef=model.coef_.astype(np.float32),
            intercept=model.intercept_.astype(np.float32),
            vectoriser=vec,
            idf=idf,
        )

    def features(self, texts: Sequence[str]) -> Any:
        counts = self.vectoriser.transform([t.lower() for t in texts])
        return counts if self.idf is None else sublinear_tfidf(counts, self.idf)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        scores = self.features(texts) @ self.coef.T + self.intercept
        if scores.shape[1] == 1:  # two classes: sklearn keeps one row of weights
            scores = np.hstack([-scores, scores])
        return softmax(np.asarray(scores))

    def save(self, directory: Path, name: str) -> None:
        arrays = {"coef": self.coef, "intercept": self.intercept}
        if self.idf is not None:
            arrays["idf"] = self.idf
        np.savez(directory / f"{name}.npz", **arrays)
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
            idf = arrays["idf"] if "idf" in arrays.files else None
        vec = vectoriser(char_ngrams, meta["vocabulary"])
        return cls(meta["classes"], coef, intercept, vec, idf)
