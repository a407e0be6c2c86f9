"""Adds a tone score and tone labels to every parse result."""

from __future__ import annotations

from typing import Any, Dict

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from kefu.domain import tone
from kefu.domain.policy import load_policy
from kefu.domain.policy.loader import Tone
from kefu.rasa.nlu.annotator import MessageAnnotator

TONE = "tone"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class ToneScorer(MessageAnnotator):
    """`tone: {"score": 0..1, "labels": [...]}` from the lexicons in policy/escalation.yml.

    The policy is read when the model loads, so an operator's change to the
    lexicon takes effect on restart without retraining.
    """

    def __init__(self, tone_policy: Tone) -> None:
        self.tone_policy = tone_policy

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> ToneScorer:
        return cls(load_policy().escalation.tone)

    def annotate(self, message: Message) -> None:
        result = tone.score(message.get(TEXT) or "", self.tone_policy)
        message.set(TONE, result.as_dict(), add_to_output=True)
