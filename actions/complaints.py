"""Complaints, in the five steps of the seeds: take it at once, get the facts,
read them back, record a ticket with a follow-up time. Feelings first: the
acknowledgement and apology come before any question (utter_complain_ack)."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import config, records
from actions.base import PhraseAction
from actions.handoff import decision_for, hand_over
from actions.orders import OrderIdValidation

COMPLAINT_SLOTS = ("complaint_what", "complaint_when", "complaint_want", "name_answer")
DECLINE = ("不想说", "不方便", "不用", "不告诉", "保密", "算了", "随便")
# 叫我小王 / 我姓王 / 王先生 / 王: a short answer is taken as how to address the visitor.
_NAME_ANSWER = re.compile(
    r"^(?:我姓|姓|叫我|我叫|我是)?([\u4e00-\u9fff]{1,3}?)(?:先生|女士|小姐)?[。.!！]?$"
)


def name_from_answer(text: str, entities: List[Dict[str, Any]]) -> Optional[str]:
    for entity in entities:
        if entity.get("entity") == "name" and entity.get("value"):
            return str(entity["value"])
    text = text.strip()
    if any(word in text for word in DECLINE):
        return None
    match = _NAME_ANSWER.match(text)
    return match.group(1) if match else None


class ValidateComplaintForm(OrderIdValidation, FormValidationAction):
    """What happened, when and what the visitor wants are kept as they said them."""

    order_id_optional = True

    def name(self) -> Text:
        return "validate_complaint_form"

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        # The name is asked once, and only when we do not know it yet.
        if tracker.get_slot("name"):
            return [s for s in domain_slots if s != "name_answer"]
        return domain_slots

    async def validate_name_answer(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        entities = (tracker.latest_message or {}).get("entities") or []
        name = name_from_answer(str(slot_value or ""), entities)
        # Declining is fine: the visitor is then addressed as 您.
        return {"name_answer": "given" if name else "declined", "name": name}


class ActionAskNameAnswer(PhraseAction):
    scene = "ask_name"

    def name(self) -> Text:
        return "action_ask_name_answer"


class ActionAskComplaintWhat(PhraseAction):
    scene = "ask_complaint_what"

    def name(self) -> Text:
        return "action_ask_complaint_what"


class ActionAskComplaintWhen(PhraseAction):
    scene = "ask_complaint_when"

    def name(self) -> Text:
        return "action_ask_complaint_when"


class ActionAskComplaintWant(PhraseAction):
    scene = "ask_complaint_want"

    def name(self) -> Text:
        return "action_ask_complaint_want"


def _facts(tracker: Tracker) -> Dict[str, str]:
    return {
        "what": tracker.get_slot("complaint_what") or "（未说明）",
        "when": tracker.get_slot("complaint_when") or "（未说明）",
        "order": tracker.get_slot("order_id") or "无",
        "want": tracker.get_slot("complaint_want") or "（未说明）",
    }


class ActionComplaintReadback(Action):
    """总结归纳: read the facts back and ask whether anything is missing."""

    def name(self) -> Text:
        return "action_complaint_readback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        dispatcher.utter_message(response="phrase_complaint_readback", **_facts(tracker))
        return []


class ActionRecordComplaint(Action):
    """A ticket with a number, and the follow-up time the policy promises."""

    def name(self) -> Text:
        return "action_record_complaint"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        data: Dict[str, Any] = dict(_facts(tracker))
        latest = tracker.latest_message or {}
        # Anything but a plain yes/no after the read-back is something we missed.
        if (latest.get("intent") or {}).get("name") not in ("affirm", "deny"):
            data["addendum"] = latest.get("text") or ""
        data["name"] = tracker.get_slot("name")
        record = await records.keep("ticket", tracker.sender_id, data)
        reset = [SlotSet(slot, None) for slot in COMPLAINT_SLOTS]
        if record is None:
            return reset + hand_over(dispatcher, tracker, decision_for(tracker, "bot_failure"))
        dispatcher.utter_message(
            response="phrase_complaint_recorded",
            number=record.number,
            follow_up=str(config.policy().service.follow_up_hours),
        )
        return reset + [SlotSet("ticket_number", record.number)]
