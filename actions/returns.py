"""Returns, exchanges and refunds: type, order id and reason, then eligibility."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Dict, List, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import config, records
from actions.api.orders import OrderClient, OrderLookupError, OrderNotFound
from actions.flows import resume_note
from actions.orders import OrderIdValidation, find_order_id
from kefu.domain import returns

logger = logging.getLogger(__name__)
RETURN_SLOTS = ("return_type", "return_reason")
# What happens next, by type (phrases in policy/phrasing.yml).
STEPS = {
    "退货": "return_steps_return",
    "换货": "return_steps_exchange",
    "退款": "return_steps_refund",
}


class ValidateReturnForm(OrderIdValidation, FormValidationAction):
    def name(self) -> Text:
        return "validate_return_form"

    async def validate_return_type(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        value = returns.return_type_of(str(slot_value or ""))
        if value is not None:
            return {"return_type": value, "form_failures": 0.0}
        # Not one of the three (or 退换货, both): ask again, explaining the choice; at
        # the policy's limit the escalation policy hands over (bot_failure).
        failures = (tracker.get_slot("form_failures") or 0.0) + 1
        if failures < config.policy().escalation.form_failures:
            dispatcher.utter_message(response="phrase_return_type_again")
        return {"return_type": None, "form_failures": failures}

    async def validate_return_reason(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        text = str(slot_value or "").strip()
        # An order id on its own answers the order question, not this one: ask again.
        order_id = find_order_id(text)
        if order_id and len(text.upper().replace(order_id, "").strip(" ，,。.")) < 2:
            return {"return_reason": None}
        return {"return_reason": text or "无理由"}


class ActionAskReturnType(Action):
    def name(self) -> Text:
        return "action_ask_return_type"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        if tracker.get_slot("form_failures"):
            return []  # the rejection already asked again, explaining the choice
        dispatcher.utter_message(response="phrase_ask_return_type")
        return []


class ActionAskReturnReason(Action):
    def name(self) -> Text:
        return "action_ask_return_reason"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        kind = tracker.get_slot("return_type") or "退换货"
        dispatcher.utter_message(response="phrase_ask_return_reason", return_type=kind)
        return []


class ActionCheckReturn(Action):
    """Look the order up, check the policy, and create the request when eligible."""

    def name(self) -> Text:
        return "action_check_return"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        order_id = tracker.get_slot("order_id")
        kind = tracker.get_slot("return_type") or "退货"
        backend = config.order_backend()
        reset = [SlotSet(slot, None) for slot in RETURN_SLOTS]
        try:
            order = await OrderClient(backend.url, backend.timeout_s).get(str(order_id))
        except OrderNotFound:
            dispatcher.utter_message(response="phrase_order_not_found", order_id=order_id)
            return reset + [SlotSet("order_id", None)]
        except OrderLookupError as e:
            logger.warning("order lookup for a return failed: %s", e)
            dispatcher.utter_message(response="phrase_lookup_failed")
            return reset + [SlotSet("lookup_failed", True)]
        verdict = returns.check(
            status=order.status,
            product=order.product,
            delivered_at=order.delivered_at,
            service=config.policy().service,
            today=datetime.now().date(),
        )
        if not verdict.eligible:
            dispatcher.utter_message(
                response="phrase_return_not_eligible",
                order_id=order.order_id,
                why=verdict.why,
                return_type=kind,
            )
            return reset + [SlotSet("product", order.product)]
        record = await records.keep(
            "return",
            tracker.sender_id,
            {
                "order_id": order.order_id,
                "type": kind,
                "reason": tracker.get_slot("return_reason"),
                "product": order.product,
            },
        )
        if record is None:
            dispatcher.utter_message(response="phrase_complaint_store_down")
            return reset
        steps = config.policy().phrase(STEPS.get(kind, "return_steps_return"))
        dispatcher.utter_message(
            response="phrase_return_created",
            order_id=order.order_id,
            return_type=kind,
            number=record.number,
            steps=steps.text if steps else "",
        )
        return (
            reset
            + [
                SlotSet("product", order.product),
                SlotSet("return_number", record.number),
                SlotSet("return_kind", kind),
            ]
            + resume_note(dispatcher, tracker, "return_form")
        )
