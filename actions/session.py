"""Conversation sessions."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

# Slots worth keeping when a session expires and a new one starts.
CARRIED_SLOTS = ("name", "phone")


class ActionSessionStart(Action):
    """Start a session, keeping who the visitor is.

    It says nothing: Rasa runs it on a conversation's first message too, and the
    visitor who opens with 你好 should hear one greeting, not two. A chat window
    opens with the standard greeting by triggering the `greet` intent.
    """

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
        events.append(ActionExecuted("action_listen"))
        return events
