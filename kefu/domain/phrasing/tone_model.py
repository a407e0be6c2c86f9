"""A learned reading of a service reply's tone, for what the listed patterns miss.

The rules in policy/rules.yml name phrases; real replies shirk, hurry, blame or
refuse in endless other words. This model is a class-balanced logistic regression
on character 1-3-gram counts (kefu.domain.char_linear), trained on labelled replies
(`tone_model.training` in policy/rules.yml: violations by family, and compliant
near-misses; the policy's own phrases and FAQ answers count as compliant too). A
reply whose chance of breaking the standard reaches the threshold is reported under
the rule its family maps to, with that rule's reason and rewrite, on the sentence
that reads worst.

It is fitted on first use (about a second) and kept for the process: no file to
build or ship, and a change of the training data takes effect on restart.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from kefu.domain.policy.loader import ToneModelConfig
from kefu.domain.script import normalise

OK = "ok"
# Sentences: the model also judges each one, so a rude sentence in a polite reply shows.
_SENTENCE = re.compile(r"[^。！!？?；;\n]+[。！!？?；;\n]*")
MIN_CHARACTERS = 2  # Chinese characters a reply needs before the model judges it
_CJK = re.compile(r"[\u4e00-\u9fff]")
_lock = threading.Lock()
_fitted: Dict[Tuple[str, ...], "ToneModel"] = {}


@dataclass(frozen=True)
class ToneFinding:
    family: str
    start: int
    end: int
    probability: float


class ToneModel:
    """Two linear models: does the reply break the standard (ok / not), and if so in
    which family. The decision is on the whole reply; the span is its sentence that
    reads worst."""

    def __init__(self, verdict, family, threshold: float) -> None:  # type: ignore[no-untyped-def]
        self.verdict = verdict
        self.family = family
        self.threshold = threshold
        self.ok_index = verdict.classes.index(OK)

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[str], threshold: float) -> "ToneModel":
        from kefu.domain.char_linear import CharLinearModel

        simplified = [normalise(t) for t in texts]
        verdict = CharLinearModel.fit(
            simplified,
            [OK if label == OK else "violation" for label in labels],
            (1, 3),
            C=1.0,
            class_weight="balanced",
            max_iter=3000,
        )
        bad = [(t, label) for t, label in zip(simplified, labels, strict=True) if label != OK]
        family = CharLinearModel.fit(
            [t for t, _ in bad],
            [label for _, label in bad],
            (1, 3),
            C=1.0,
            class_weight="balanced",
            max_iter=3000,
        )
        return cls(verdict, family, threshold)

    def violation(self, texts: Sequence[str]) -> List[float]:
        return [1.0 - float(row[self.ok_index]) for row in self.verdict.probabilities(texts)]

    def findings(self, text: str) -> List[ToneFinding]:
        """One finding when the reply as a whole reads as a violation, on its worst sentence."""
        simplified = normalise(text)
        if len(_CJK.findall(simplified)) < MIN_CHARACTERS:
            return []  # no Chinese words to judge (an id, a number, a stray symbol)
        [whole] = self.violation([simplified])
        if whole < self.threshold:
            return []
        spans = [m.span() for m in _SENTENCE.finditer(simplified) if m.group().strip()]
        spans = spans or [(0, len(simplified))]
        scores = self.violation([simplified[s:e] for s, e in spans])
        start, end = spans[max(range(len(spans)), key=scores.__getitem__)]
        row = self.family.probabilities([simplified])[0]
        best = max(range(len(row)), key=lambda i: row[i])
        return [ToneFinding(self.family.classes[best], start, end, whole)]


def load_examples(paths: Sequence[Path]) -> Tuple[List[str], List[str]]:
    import yaml

    texts: List[str] = []
    labels: List[str] = []
    for path in paths:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for item in data.get("replies") or []:
            texts.append(str(item["text"]))
            labels.append(OK if item["label"] == "ok" else str(item["family"]))
    return texts, labels


def model_for(config: ToneModelConfig, compliant: Sequence[str] = ()) -> ToneModel:
    """The fitted model for this configuration, fitted once per process.

    `compliant`: texts known to pass (the policy's phrases), learned as `ok`.
    """
    key = (str(config.threshold), str(hash(tuple(compliant)))) + tuple(
        f"{p}:{p.stat().st_mtime_ns}" for p in config.training
    )
    with _lock:
        if key not in _fitted:
            texts, labels = load_examples(config.training)
            texts += list(compliant)
            labels += [OK] * len(compliant)
            _fitted[key] = ToneModel.fit(texts, labels, config.threshold)
        return _fitted[key]
