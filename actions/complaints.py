"""Complaints, in the five steps of the seeds: take it at once, get the facts,
read them back, record a ticket with a follow-up time. Feelings first: the
acknowledgement and apology come before any question (utter_complain_ack).

The read-back is in the bot's own words (kefu.domain.complaints: what happened, the day,
the order, what the visitor wants), addresses the visitor as they asked to be
addressed, and a follow-up is promised only with a number to follow up on.
Whatever the visitor adds once the ticket exists goes into that ticket.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Dict, List, Optional, Text
from zoneinfo import ZoneInfo

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import config, records
from actions.base import PhraseAction
from actions.flows import resume_note
from actions.handoff import decision_for, hand_over
from actions.orders import OrderIdValidation
from kefu.domain import complaints as wording
from kefu.domain.phrasing.context import TITLES, surname_of, title_for

COMPLAINT_SLOTS = (
    "complaint_what",
    "complaint_when",
    "complaint_want",
    "name_answer",
    "contact_phone",
)
DECLINE = ("不想说", "不方便", "不用", "不告诉", "保密", "算了", "随便")
# 叫我小王 / 我姓王 / 王先生 / 王: a short answer is taken as how to address the visitor.
_NAME_ANSWER = re.compile(
    r"^(?:我姓|姓|叫我|我叫|我是)?([\u4e00-\u9fff]{1,3}?)(?:先生|女士|小姐)?[。.!！]?$"
)
_TITLE = re.compile(r"(先生|女士|小姐)|^(?:是)?(男|女)(?:的|士|生)?[。.!！]?$")
_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_YES = ("是", "对", "可以", "好", "行", "没错", "嗯", "ok", "就这个", "这个号")
ONLINE_ONLY = "在线回复"


def name_from_answer(text: str, entities: List[Dict[str, Any]]) -> Optional[str]:
    for entity in entities:
        if entity.get("entity") == "name" and entity.get("value"):
            return str(entity["value"])
    text = text.strip()
    if any(word in text for word in DECLINE):
        return None
    match = _NAME_ANSWER.match(text)
    return match.group(1) if match else None


def title_from_answer(text: str) -> Optional[str]:
    """先生 / 女士 when the answer says which (王先生, 女士, 是女的)."""
    match = _TITLE.search((text or "").strip())
    if not match:
        return None
    if match.group(1):
        return TITLES[match.group(1)]
    return "先生" if match.group(2) == "男" else "女士"


def title_said(tracker: Tracker) -> Optional[str]:
    """王女士 in the visitor's own words earlier in the conversation."""
    texts = (e.get("text") or "" for e in tracker.events if e.get("event") == "user")
    return title_for(tracker.get_slot("name"), texts)


def mask(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:]


class ValidateComplaintForm(OrderIdValidation, FormValidationAction):
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
        # The name is asked once (and the title once more when only a surname came),
        # and only when we do not know how to address the visitor yet.
        name = tracker.get_slot("name")
        known = name and (tracker.get_slot("title") or title_said(tracker))
        # Asked once already (an earlier complaint) and not being answered now.
        asked = name and tracker.get_slot("title_asked") and not tracker.get_slot("name_answer")
        if known or asked:
            return [s for s in domain_slots if s != "name_answer"]
        return domain_slots

    async def validate_name_answer(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        text = str(slot_value or "")
        title = title_from_answer(text)
        if tracker.get_slot("name") and tracker.get_slot("title_asked"):
            # The answer to 请问是王先生还是王女士？: whatever it is, move on.
            return {"name_answer": "given", "title": title}
        entities = (tracker.latest_message or {}).get("entities") or []
        name = name_from_answer(text, entities)
        if not name:
            # Declining is fine: the visitor is then addressed as 您.
            return {"name_answer": "declined", "name": None}
        if title:
            return {"name_answer": "given", "name": name, "title": title}
        # A surname but no title: ask once which (action_ask_name_answer), never guess.
        return {"name_answer": None, "name": name}

    async def validate_complaint_what(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        # The complaint itself ("我要投诉") says nothing yet: ask what happened.
        return {"complaint_what": slot_value if wording.what(str(slot_value or "")) else None}

    async def validate_contact_phone(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        text = str(slot_value or "").replace(" ", "").replace("-", "")
        match = _PHONE.search(text)
        if match:
            return {"contact_phone": match.group(0), "phone": match.group(0)}
        known = tracker.get_slot("phone")
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        if known and (intent == "affirm" or any(text.lower().startswith(y) for y in _YES)):
            return {"contact_phone": known}
        if intent == "deny" or any(word in text for word in DECLINE + ("不留", "在线")):
            return {"contact_phone": ONLINE_ONLY}
        failures = (tracker.get_slot("form_failures") or 0.0) + 1
        if failures < config.policy().escalation.form_failures:
            dispatcher.utter_message(response="phrase_contact_phone_invalid")
            return {"contact_phone": None, "form_failures": failures}
        return {"contact_phone": ONLINE_ONLY, "form_failures": 0.0}


class ActionAskNameAnswer(Action):
    def name(self) -> Text:
        return "action_ask_name_answer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        name = tracker.get_slot("name")
        if name and not (tracker.get_slot("title") or title_said(tracker)):
            dispatcher.utter_message(response="phrase_ask_title", surname=surname_of(name))
            return [SlotSet("title_asked", True)]
        dispatcher.utter_message(response="phrase_ask_name")
        return []


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


class ActionAskContactPhone(Action):
    """The number the follow-up goes to: the known one confirmed, or a new one."""

    def name(self) -> Text:
        return "action_ask_contact_phone"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        if tracker.get_slot("form_failures"):
            return []  # the rejection already asked again
        phone = tracker.get_slot("phone")
        if phone:
            dispatcher.utter_message(response="phrase_confirm_contact_phone", phone=mask(phone))
        else:
            dispatcher.utter_message(response="phrase_ask_contact_phone")
        return []


def today() -> datetime:
    return datetime.now(ZoneInfo(config.policy().escalation.hours.timezone))


def facts(tracker: Tracker) -> Dict[str, str]:
    """The complaint as the ticket and the read-back put it: short, in our words."""
    contact = tracker.get_slot("contact_phone")
    order = tracker.get_slot("order_id")
    return {
        "what": wording.what(tracker.get_slot("complaint_what") or "") or "（未说明）",
        "when": wording.when(tracker.get_slot("complaint_when") or "", today().date())
        or "（未说明）",
        "order": order if order and order != "无" else "无",
        "want": wording.want(tracker.get_slot("complaint_want") or "") or "（未说明）",
        "contact": "在线回复" if not contact or contact == ONLINE_ONLY else mask(contact),
    }


class ActionComplaintReadback(Action):
    """总结归纳: read the facts back and ask whether anything is missing."""

    def name(self) -> Text:
        return "action_complaint_readback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        dispatcher.utter_message(response="phrase_complaint_readback", **facts(tracker))
        return []


class ActionRecordComplaint(Action):
    """A ticket with a number, who follows it up, how, and by when."""

    def name(self) -> Text:
        return "action_record_complaint"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        data: Dict[str, Any] = dict(facts(tracker))
        latest = tracker.latest_message or {}
        # Anything but a plain yes/no after the read-back is something we missed.
        if (latest.get("intent") or {}).get("name") not in ("affirm", "deny"):
            data["addendum"] = [latest.get("text") or ""]
        data["visitor_words"] = {
            slot: tracker.get_slot(slot) for slot in COMPLAINT_SLOTS if tracker.get_slot(slot)
        }
        data["name"] = tracker.get_slot("name")
        data["phone"] = tracker.get_slot("contact_phone")
        record = await records.keep("ticket", tracker.sender_id, data)
        reset = [SlotSet(slot, None) for slot in COMPLAINT_SLOTS]
        if record is None:
            return reset + hand_over(dispatcher, tracker, decision_for(tracker, "bot_failure"))
        hours = config.policy().service.follow_up_hours
        deadline = today() + timedelta(hours=hours)
        dispatcher.utter_message(
            response="phrase_complaint_recorded",
            number=record.number,
            follow_up=str(hours),
            deadline=f"{deadline.month}月{deadline.day}日{deadline:%H:%M}",
            how=follow_up_how(data["contact"]),
        )
        return (
            reset
            + [SlotSet("ticket_number", record.number), SlotSet("ticket_open", True)]
            + resume_note(dispatcher, tracker, "complaint_form")
        )


def follow_up_how(contact: str) -> str:
    return "在这里在线回复您" if contact == "在线回复" else f"通过手机{contact}与您联系"


class ActionAddToTicket(Action):
    """A further complaint once the ticket exists: it goes into that ticket."""

    def name(self) -> Text:
        return "action_add_to_ticket"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        number = tracker.get_slot("ticket_number")
        text = (tracker.latest_message or {}).get("text") or ""
        if not number or not await records.append_to(number, "addendum", text):
            dispatcher.utter_message(response="phrase_ticket_addendum_failed")
            return [SlotSet("ticket_open", False)]
        dispatcher.utter_message(
            response="phrase_ticket_addendum",
            number=number,
            follow_up=str(config.policy().service.follow_up_hours),
        )
        return []
