"""A visitor who chases: apologise, then say what has been done and what happens next.

Never "正在为您加紧处理" when nothing is being done: an open form says what it is
waiting for; otherwise the answer is what the conversation has already produced
(a lookup that failed, a complaint ticket, a return request, an order's status and
the carrier's estimate, an agent's last promise), or, with nothing at all, an honest
question about what the visitor is waiting for. (While a person has the chat the
desk answers urges with the queue position itself.)
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import config

# What an open form is waiting for, as the visitor would say it.
NEEDED = {
    "order_id": "订单号",
    "complaint_what": "事情的经过",
    "complaint_when": "发生的时间",
    "complaint_want": "您的诉求",
    "name_answer": "您的称呼",
    "contact_phone": "联系电话",
    "return_type": "办理的类型（退货、换货或退款）",
    "return_reason": "申请的原因",
}


def urge_reply(tracker: Tracker) -> Tuple[str, Dict[str, Any]]:
    """The phrase and its values that answer a chase in this conversation."""
    requested = tracker.get_slot("requested_slot")
    if tracker.active_loop.get("name") and requested in NEEDED:
        return "phrase_urge_form", {"needed": NEEDED[requested]}
    if tracker.get_slot("lookup_failed"):
        return "phrase_urge_lookup_failed", {}
    promise: Optional[str] = tracker.get_slot("agent_promise")
    if promise:
        return "phrase_urge_agent_promise", {"promise": promise}
    if tracker.get_slot("ticket_number"):
        return "phrase_urge_ticket", {
            "number": tracker.get_slot("ticket_number"),
            "follow_up": str(config.policy().service.follow_up_hours),
        }
    if tracker.get_slot("return_number"):
        return "phrase_urge_return", {
            "number": tracker.get_slot("return_number"),
            "return_type": tracker.get_slot("return_kind") or "退换货",
        }
    if tracker.get_slot("order_status") and tracker.get_slot("order_id"):
        return "phrase_urge_order", {
            "order_id": tracker.get_slot("order_id"),
            "status_text": tracker.get_slot("order_status"),
            "eta": tracker.get_slot("order_eta") or "有新的物流进展会第一时间更新。",
        }
    return "phrase_urge_nothing_pending", {}


class ActionUrge(Action):
    def name(self) -> Text:
        return "action_urge"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        phrase, values = urge_reply(tracker)
        dispatcher.utter_message(response=phrase, **values)
        return []
