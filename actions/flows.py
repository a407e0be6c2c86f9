"""Moving between flows: a new request in the middle of a form, and the way back.

A visitor filling in a return who asks where their parcel is gets one short
question (action_offer_switch): yes moves to the order lookup, no carries on with
the return. Either way nothing collected is lost: the slots stay, the paused form
is remembered, and when the other flow has finished the bot says how to pick the
paused one up again (resume_note).
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import config
from kefu.domain import order_ids

# The flow each intent starts, and how the visitor would name it.
FLOW_OF_INTENT = {"query_order": "order", "complain": "complaint", "request_return": "return"}
FORM_OF_FLOW = {"order": "order_form", "complaint": "complaint_form", "return": "return_form"}
FLOW_NAME = {
    "order_form": "订单查询",
    "complaint_form": "投诉登记",
    "return_form": "退换货申请",
    "order": "查询订单",
    "complaint": "登记投诉",
    "return": "办理退换货",
}
# Questions whose answer is a description in the visitor's own words.
FREE_TEXT_SLOTS = ("complaint_what", "complaint_when", "complaint_want", "return_reason")
# A message that asks something: a shop question, not a description, even when the
# FAQ topic is read with little confidence.
_ASKS = re.compile(
    r"[?？]|[吗嘛么呢][\s。.!！~～]*$|怎么|怎样|如何|多久|多少|几天|几点|哪[里儿个]|能不能|可不可以|有没有|是不是"
)
# What to say to pick a paused form up again (each starts that form).
AGAIN = {"order_form": "查订单", "complaint_form": "我要投诉", "return_form": "我要退换货"}


class ActionOfferSwitch(Action):
    """Another flow asked for in a form: pause the form and ask once whether to switch."""

    def name(self) -> Text:
        return "action_offer_switch"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        form = tracker.active_loop.get("name")
        latest = tracker.latest_message or {}
        intent = (latest.get("intent") or {}).get("name")
        target = FLOW_OF_INTENT.get(str(intent))
        requested = tracker.get_slot("requested_slot")
        # An order id given when the form asks for one is an answer, however it is read.
        if form and requested == "order_id" and order_ids.find(latest.get("text")):
            return [FollowupAction(form)]
        # A description that merely reads like another request is the answer.
        confidence = float((latest.get("intent") or {}).get("confidence") or 0.0)
        if (
            form
            and requested in FREE_TEXT_SLOTS
            and confidence < config.policy().service.switch_min_confidence
        ):
            return [SlotSet(requested, latest.get("text")), FollowupAction(form)]
        if not form or target is None or FORM_OF_FLOW[target] == form:
            return [FollowupAction(form)] if form else []
        dispatcher.utter_message(
            response="phrase_offer_switch", target=FLOW_NAME[target], current=FLOW_NAME[form]
        )
        return [
            ActiveLoop(None),
            SlotSet("requested_slot", None),
            SlotSet("paused_form", form),
            SlotSet("switch_to", target),
        ]


class ActionFaqInForm(Action):
    """A shop question while a form waits for an answer: answered, then the form asks again.

    In a question whose answer is a description (what happened, why return it), a
    message read as a shop question with little confidence and not asking anything is
    the answer itself (尺码不合适 as a return reason reads a little like a size
    question): it fills the slot and the form goes on.
    """

    def name(self) -> Text:
        return "action_faq_in_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        form = tracker.active_loop.get("name")
        latest = tracker.latest_message or {}
        requested = tracker.get_slot("requested_slot")
        if form and requested in FREE_TEXT_SLOTS and is_description(latest):
            return [SlotSet(requested, latest.get("text")), FollowupAction(form)]
        response = faq_response(latest)
        if response:
            dispatcher.utter_message(response=response)
        else:
            dispatcher.utter_message(response="utter_default")
        return []


def is_description(latest: Dict[Text, Any]) -> bool:
    """A message read as a shop question with less than the switching confidence, asking nothing."""
    confidence = float((latest.get("intent") or {}).get("confidence") or 0.0)
    if confidence >= config.policy().service.switch_min_confidence:
        return False
    return not _ASKS.search(str(latest.get("text") or ""))


def faq_response(latest: Dict[Text, Any]) -> Optional[Text]:
    """The response (utter_faq/<topic>) the FAQ selector picked for this message."""
    selected = (latest.get("response_selector") or {}).get("faq") or {}
    response = (selected.get("response") or {}).get("utter_action")
    return str(response) if response else None


def resume_note(
    dispatcher: CollectingDispatcher, tracker: Tracker, finished: str
) -> List[EventType]:
    """After the form `finished` ends: how to resume the one paused for it, if any."""
    paused = tracker.get_slot("paused_form")
    if paused not in AGAIN:
        return []
    if paused == finished:  # the visitor chose to carry on with it: nothing waits
        return [SlotSet("paused_form", None), SlotSet("switch_to", None)]
    dispatcher.utter_message(
        response="phrase_resume_paused", flow=FLOW_NAME[paused], again=AGAIN[paused]
    )
    return [SlotSet("paused_form", None), SlotSet("switch_to", None)]
