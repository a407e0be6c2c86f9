"""Conversation start: the standard opening."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

# Slots worth keeping when a session expires and a new one starts.
CARRIED_SLOTS = ("name", "phone")


class ActionSessionStart(Action):
    """Start a session with the opening (brand, bot name, time-of-day greeting)."""

    def name(self) -> str:
        return "action_session_start"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[EventType]:
        events: List[EventType] = [SessionStarted()]
        events += [
            SlotSet(slot, tracker.get_slot(slot))
            for slot in CARRIED_SLOTS
            if tracker.get_slot(slot) is not None
        ]
        dispatcher.utter_message(response="phrase_opening")
        events.append(ActionExecuted("action_listen"))
        return events
