"""A visitor who chases: apologise, say why, give a fresh estimate."""

from __future__ import annotations

from typing import List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

# What an open form is waiting for, as the visitor would say it.
NEEDED = {
    "order_id": "订单号",
    "complaint_what": "事情的经过",
    "complaint_when": "发生的时间",
    "complaint_want": "您的诉求",
    "name_answer": "您的称呼",
    "return_type": "办理的类型（退货、换货或退款）",
    "return_reason": "申请的原因",
}


class ActionUrge(Action):
    def name(self) -> Text:
        return "action_urge"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        requested = tracker.get_slot("requested_slot")
        if tracker.active_loop.get("name") and requested in NEEDED:
            dispatcher.utter_message(response="phrase_urge_form", needed=NEEDED[requested])
        elif tracker.get_slot("lookup_failed"):
            dispatcher.utter_message(response="phrase_urge_lookup_failed")
        else:
            dispatcher.utter_message(response="phrase_urge_general")
        return []
