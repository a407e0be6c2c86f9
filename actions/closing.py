"""Suggestions, and the one satisfaction question at the end of a chat."""

from __future__ import annotations

import logging
import re
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import records
from actions.base import PhraseAction
from kefu.domain.script import normalise

logger = logging.getLogger(__name__)

_DIGIT = re.compile(r"(?<![0-9])([1-5])(?![0-9])")
_CHINESE = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
# Longest first: 非常不满意 before 不满意 before 满意.
_WORDS = (
    ("非常不满意", 1),
    ("很不满意", 1),
    ("很差", 1),
    ("不满意", 2),
    ("一般", 3),
    ("还行", 3),
    ("非常满意", 5),
    ("很满意", 5),
    ("满分", 5),
    ("满意", 4),
)


def score_of(text: Optional[str]) -> Optional[int]:
    """A 1-5 score from how visitors answer: 5, 5分, 五星, 非常满意 ..."""
    text = normalise(text or "").strip()
    match = _DIGIT.search(text)
    if match:
        return int(match.group(1))
    stars = re.search(r"([一二两三四五])(?:分|星|颗星)", text)
    if stars:
        return _CHINESE[stars.group(1)]
    for word, score in _WORDS:
        if word in text:
            return score
    return None


class ValidateSurveyForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_survey_form"

    async def validate_satisfaction(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        score = score_of(str(slot_value) if slot_value is not None else None)
        # One question only: an answer that is not a score is kept as a comment.
        if score is None:
            return {"satisfaction": "comment", "satisfaction_comment": str(slot_value)}
        return {"satisfaction": str(score)}


class ActionAskSatisfaction(PhraseAction):
    scene = "ask_satisfaction"

    def name(self) -> Text:
        return "action_ask_satisfaction"


class ActionRecordSurvey(Action):
    def name(self) -> Text:
        return "action_record_survey"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        value = tracker.get_slot("satisfaction")
        data: Dict[str, Any] = {"score": int(value) if value and value.isdigit() else None}
        if tracker.get_slot("satisfaction_comment"):
            data["comment"] = tracker.get_slot("satisfaction_comment")
        await records.keep("survey", tracker.sender_id, data)  # thanked even on an outage
        dispatcher.utter_message(response="phrase_survey_thanks")
        return [SlotSet("satisfaction", None), SlotSet("satisfaction_comment", None)]


class ActionRecordSuggestion(Action):
    def name(self) -> Text:
        return "action_record_suggestion"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        text = (tracker.latest_message or {}).get("text") or ""
        await records.keep("suggestion", tracker.sender_id, {"text": text})
        return []
