"""Order status: a form that collects the order id, and the lookup."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import config, records
from actions.api.orders import Order, OrderClient, OrderLookupError, OrderNotFound
from actions.flows import resume_note
from kefu.domain import order_ids

logger = logging.getLogger(__name__)


def find_order_id(text: Optional[str]) -> Optional[str]:
    """The first order id in a text, typed with spaces or dashes or not."""
    return order_ids.find(text)


def eta_text(order: Order) -> str:
    """The carrier's estimate as a sentence, or nothing when there is none."""
    if order.status == "delivered" or not order.estimated_delivery:
        return ""
    try:
        day = date.fromisoformat(order.estimated_delivery[:10])
    except ValueError:
        return ""
    return f"预计{day.month}月{day.day}日送达。"


def status_detail(order: Order) -> str:
    if order.status == "pending":
        return "仓库正在为您备货，会尽快发出。" + eta_text(order)
    if order.status == "delivered" and order.delivered_at:
        return f"已于{order.delivered_at[:10]}签收。"
    detail = ""
    if order.carrier and order.tracking_no:
        detail = f"承运快递：{order.carrier}，运单号：{order.tracking_no}。"
    return detail + eta_text(order)


NO_ORDER_WORDS = ("没有", "没订单", "不记得", "找不到", "无")
# The phrase each form asks for the order id with.
ASK_ORDER_ID = {
    "complaint_form": "phrase_ask_complaint_order",
    "return_form": "phrase_ask_return_order",
}


def check_order_id(
    slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, optional: bool = False
) -> Dict[Text, Any]:
    """The validation every form shares: a well-formed id, or a polite re-ask.

    Once the answers were rejected as often as the policy allows, nothing is said
    here: the escalation policy hands the conversation over (reason bot_failure).
    """
    text = str(slot_value) if slot_value is not None else ""
    order_id = find_order_id(text)
    if order_id:
        return {"order_id": order_id, "form_failures": 0.0}
    if optional and any(word in text for word in NO_ORDER_WORDS):
        return {"order_id": "无", "form_failures": 0.0}
    failures = (tracker.get_slot("form_failures") or 0.0) + 1
    if failures < config.policy().escalation.form_failures:
        dispatcher.utter_message(response="phrase_order_id_invalid")
    return {"order_id": None, "form_failures": failures}


class OrderIdValidation:
    """`validate_order_id` for every form that asks for an order id."""

    order_id_optional = False  # the complaint form takes 没有 for an answer

    async def validate_order_id(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        return check_order_id(slot_value, dispatcher, tracker, optional=self.order_id_optional)


class ValidateOrderForm(OrderIdValidation, FormValidationAction):
    def name(self) -> Text:
        return "validate_order_form"


class ActionAskOrderId(Action):
    """How a form asks for the id (Rasa calls action_ask_<slot> when it exists)."""

    def name(self) -> Text:
        return "action_ask_order_id"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        if tracker.get_slot("form_failures"):
            # The rejection already asked again, with an example; at the limit the
            # conversation is handed over next (bot_failure).
            return []
        form = tracker.active_loop.get("name") or ""
        dispatcher.utter_message(response=ASK_ORDER_ID.get(form, "phrase_ask_order_id"))
        return []


class ActionLookupOrder(Action):
    """Look the order up and give its status with the carrier's estimate.

    No wait is announced here: a lookup usually answers in milliseconds, and the
    desk itself tells the visitor when a reply takes longer (honest waiting).
    """

    def name(self) -> Text:
        return "action_lookup_order"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[EventType]:
        order_id = tracker.get_slot("order_id")
        if not order_id:
            dispatcher.utter_message(response="phrase_ask_order_id")
            return []
        backend = config.order_backend()
        try:
            order = await OrderClient(backend.url, backend.timeout_s).get(order_id)
        except OrderNotFound:
            dispatcher.utter_message(response="phrase_order_not_found", order_id=order_id)
            return [SlotSet("order_id", None)]
        except OrderLookupError as e:
            logger.warning("order lookup failed: %s", e)
            dispatcher.utter_message(response="phrase_lookup_failed")
            return [SlotSet("lookup_failed", True)]
        dispatcher.utter_message(
            response="phrase_order_status",
            order_id=order.order_id,
            product=order.product,
            status_text=order.status_text,
            detail=status_detail(order),
        )
        return [
            SlotSet("lookup_failed", False),
            SlotSet("order_status", order.status_text),
            SlotSet("order_eta", eta_text(order) or None),
        ] + resume_note(dispatcher, tracker, "order_form")


class ActionTakePhone(Action):
    """A phone number given out of a form: after a failed lookup it books the call-back
    the bot offered; otherwise it is noted for the conversation."""

    def name(self) -> Text:
        return "action_take_phone"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        phone = tracker.get_slot("phone")
        if not (phone and tracker.get_slot("lookup_failed")):
            dispatcher.utter_message(response="utter_noted")
            return []
        record = await records.keep(
            "callback",
            tracker.sender_id,
            {"phone": phone, "order_id": tracker.get_slot("order_id"), "why": "order lookup"},
        )
        if record is None:
            dispatcher.utter_message(response="phrase_complaint_store_down")
            return []
        masked = phone[:3] + "****" + phone[-4:]
        dispatcher.utter_message(
            response="phrase_lookup_callback_booked", phone=masked, number=record.number
        )
        return [SlotSet("lookup_failed", False)]
