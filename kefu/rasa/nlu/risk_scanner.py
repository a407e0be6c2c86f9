"""Adds the risks read from the visitor's words to every parse result."""

from __future__ import annotations

from typing import Any, Dict

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from kefu.domain import risk
from kefu.domain.policy import load_policy
from kefu.rasa.nlu.annotator import MessageAnnotator
from kefu.rasa.nlu.linear_intent_classifier import SENTENCE_INTENTS
from kefu.rasa.nlu.script_normalizer import ORIGINAL_TEXT

RISK = "risk"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class RiskScanner(MessageAnnotator):
    """`risk: {"reasons": [...], "evidence": [...]}` from policy/risk.yml.

    Every sentence is read whatever the intent classifier said of the whole
    message; where the linear classifier read the sentences one by one
    (`sentence_intents`), a confident escalation intent there counts too. The
    policy is read when the model loads: a lexicon change needs a restart, not a
    retraining.

    The intent is then revised by what the words showed (`kefu.domain.risk.MessageJudge`):
    a long message about a late parcel whose third sentence says the charger smoked
    is `report_safety`, so the rules and forms treat it as the hand-over it is; an
    escalation intent guessed with low confidence and nothing in the words behind it
    gives way to the next intent. The classifier's own reading stays in the parse as
    `intent_classifier`.
    """

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        # A sentence's own escalation intent counts from this confidence on.
        return {"sentence_confidence": 0.75}

    def __init__(self, config: Dict[str, Any], judge: risk.MessageJudge):
        self.judge = judge

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> RiskScanner:
        return cls(
            config,
            risk.MessageJudge.for_policy(load_policy(), float(config["sentence_confidence"])),
        )

    def annotate(self, message: Message) -> None:
        text = message.get(ORIGINAL_TEXT) or message.get(TEXT) or ""
        reading, chosen = self.judge.judge(
            text,
            message.get(INTENT) or {},
            message.get(INTENT_RANKING_KEY) or [],
            message.get(SENTENCE_INTENTS) or [],
        )
        message.set(RISK, reading.as_dict(), add_to_output=True)
        if chosen is None:
            return
        # The ranking stays the classifier's own.
        message.set("intent_classifier", message.get(INTENT), add_to_output=True)
        message.set(INTENT, chosen, add_to_output=True)
