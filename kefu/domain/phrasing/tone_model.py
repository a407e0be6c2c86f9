"""A learned reading of a service reply's tone, for what the listed patterns miss.

The rules in policy/rules.yml name phrases; real replies shirk, hurry, blame or
refuse in endless other words. This model is a class-balanced multinomial logistic
regression on sublinear tf-idf character n-grams (kefu.domain.char_linear), trained
on labelled replies (`tone_model.training` in policy/rules.yml: violations by family,
and compliant near-misses; the policy's own phrases and FAQ answers count as
compliant too). A reply whose chance of breaking the standard reaches the threshold
is reported under the rule its family maps to, with that rule's reason and rewrite,
on the sentence that reads worst. The settings were chosen by grouped cross-validation
over the training files (`python -m kefu.tools.evaluation tone-cv`).

It is fitted on first use (a second or two) and kept for the process: no file to
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
    """One multinomial logistic regression over `ok` and the violation families: the
    chance a reply breaks the standard is 1 - P(ok), its family the likeliest of the
    rest. The decision is on the whole reply; the span is its sentence that reads worst."""

    def __init__(self, model, threshold: float) -> None:  # type: ignore[no-untyped-def]
        self.model = model
        self.threshold = threshold
        self.ok_index = model.classes.index(OK)

    @classmethod
    def fit(
        cls, texts: Sequence[str], labels: Sequence[str], config: ToneModelConfig
    ) -> "ToneModel":
        from kefu.domain.char_linear import CharLinearModel

        model = CharLinearModel.fit(
            [normalise(t) for t in texts],
            list(labels),
            config.char_ngrams,
            C=config.C,
            class_weight="balanced",
            max_iter=3000,
            sublinear_tf=config.sublinear_tf,
            solver="sag",
        )
        return cls(model, config.threshold)

    def violation(self, texts: Sequence[str]) -> List[float]:
        return [1.0 - float(row[self.ok_index]) for row in self.model.probabilities(texts)]

    def score(self, text: str) -> float:
        """The chance the whole reply breaks the standard; 0 for a text with too few
        Chinese characters to judge (an id, a number, a stray symbol)."""
        simplified = normalise(text)
        if len(_CJK.findall(simplified)) < MIN_CHARACTERS:
            return 0.0
        return self.violation([simplified])[0]

    def findings(self, text: str) -> List[ToneFinding]:
        """One finding when the reply as a whole reads as a violation, on its worst sentence."""
        whole = self.score(text)
        if whole < self.threshold:
            return []
        simplified = normalise(text)
        [row] = self.model.probabilities([simplified])
        spans = [m.span() for m in _SENTENCE.finditer(simplified) if m.group().strip()]
        spans = spans or [(0, len(simplified))]
        scores = self.violation([simplified[s:e] for s, e in spans])
        start, end = spans[max(range(len(spans)), key=scores.__getitem__)]
        family = max((i for i in range(len(row)) if i != self.ok_index), key=lambda i: row[i])
        return [ToneFinding(self.model.classes[family], start, end, whole)]


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
    key = (repr(config), str(hash(tuple(compliant)))) + tuple(
        f"{p}:{p.stat().st_mtime_ns}" for p in config.training
    )
    with _lock:
        if key not in _fitted:
            texts, labels = load_examples(config.training)
            texts += list(compliant)
            labels += [OK] * len(compliant)
            _fitted[key] = ToneModel.fit(texts, labels, config)
        return _fitted[key]
