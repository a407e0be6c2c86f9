"""Adds the risks read from the visitor's words to every parse result."""

from __future__ import annotations

from typing import Any, Dict

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from kefu.domain import risk
from kefu.domain.policy import load_policy
from kefu.domain.policy.loader import StoryWords
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

    The intent is then revised by what the words showed (`kefu.domain.risk.revised_intent`):
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

    def __init__(
        self,
        config: Dict[str, Any],
        reader: risk.Reader,
        reasons: Dict[str, str],
        priorities: Dict[str, int] | None = None,
        intent_min_confidence: float = 0.0,
        story: StoryWords | None = None,
    ):
        self.min_confidence = float(config["sentence_confidence"])
        self.reader = reader
        self.reason_of_intent = reasons
        self.priority = priorities or {}
        self.intent_min_confidence = intent_min_confidence
        self.story = story

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> RiskScanner:
        policy = load_policy()
        reasons = {
            intent: code
            for code, reason in policy.escalation.reasons.items()
            for intent in reason.intents
        }
        priorities = {code: r.priority for code, r in policy.escalation.reasons.items()}
        return cls(
            config,
            risk.Reader(policy.risk),
            reasons,
            priorities,
            policy.escalation.intent_min_confidence,
            policy.escalation.story,
        )

    def annotate(self, message: Message) -> None:
        text = message.get(ORIGINAL_TEXT) or message.get(TEXT) or ""
        classifier = risk.from_classifier(
            message.get(SENTENCE_INTENTS) or [],
            self.reason_of_intent,
            self.min_confidence,
            original=text,
        )
        reading = risk.outweighed(
            self.reader.read(text, classifier), message.get(INTENT) or {}, self.story
        )
        message.set(RISK, reading.as_dict(), add_to_output=True)
        self._revise_intent(message, reading)

    def _revise_intent(self, message: Message, reading: risk.Reading) -> None:
        ranking = message.get(INTENT_RANKING_KEY) or []
        chosen = risk.revised_intent(
            message.get(INTENT) or {},
            ranking,
            reading,
            self.reason_of_intent,
            self.priority,
            self.intent_min_confidence,
        )
        if chosen is None:
            return
        # The ranking stays the classifier's own.
        message.set("intent_classifier", message.get(INTENT), add_to_output=True)
        message.set(INTENT, chosen, add_to_output=True)
