"""Shared base actions (abstract, so the action server does not register them)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict


class PhraseAction(Action, ABC):
    """Sends one standard phrase from the policy file (`phrase_<scene>`)."""

    scene: Text

    @abstractmethod
    def name(self) -> Text: ...

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[EventType]:
        dispatcher.utter_message(response=f"phrase_{self.scene}")
        return []
