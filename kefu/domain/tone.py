"""Tone of a visitor's message: a score in [0, 1] with the labels that made it.

Inputs are the insult and anger lexicons, punctuation runs and repetition cues from
policy/escalation.yml. One message never decides anything on its own: the scores
accumulate over turns (`accumulate`) and the escalation module compares the sum
with the policy's threshold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, List, Tuple

from kefu.domain.policy.loader import Tone

_EXCLAIM_RUN = re.compile(r"[!！]{2,}")
_QUESTION_RUN = re.compile(r"[?？]{2,}|[?？][!！]+[?？]|[!！][?？]")
_SHOUTING = re.compile(r"(?<![A-Za-z])[A-Z]{4,}(?![A-Za-z])")


@dataclass(frozen=True)
class ToneScore:
    score: float
    labels: Tuple[str, ...]

    def as_dict(self) -> dict:
        return {"score": round(self.score, 3), "labels": list(self.labels)}


def score(text: str, tone: Tone) -> ToneScore:
    """Score one message (already normalised to simplified characters)."""
    lowered = (text or "").lower()
    weights = tone.weights
    labels: List[str] = []
    total = 0.0
    if any(word in lowered for word in tone.insult_words):
        labels.append("insult")
        total += weights["insult_word"]
    anger_hits = sum(1 for word in tone.anger_words if word in lowered)
    if anger_hits:
        labels.append("anger_words")
        total += weights["anger_word"] * min(anger_hits, 2)
    if _EXCLAIM_RUN.search(text):
        labels.append("exclamations")
        total += weights["exclamation_run"]
    if _QUESTION_RUN.search(text):
        labels.append("questions")
        total += weights["question_run"]
    if any(p.search(lowered) for p in tone.repeat_patterns):
        labels.append("repeat_ask")
        total += weights["repeat_count"]
    if _SHOUTING.search(text):
        labels.append("shouting")
        total += weights["shouting"]
    return ToneScore(min(total, 1.0), tuple(labels))


def accumulate(scores: Iterable[float], tone: Tone) -> Tuple[float, int]:
    """The decayed running sum over turns, and how many turns scored above zero."""
    running, tense = 0.0, 0
    for value in scores:
        running = running * tone.decay + value
        tense += value > 0
    return running, tense
