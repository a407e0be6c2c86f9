"""The call-back dialogue: outside the agents' hours, or with nobody online, the desk
asks for a phone number and a time, books it, and acknowledges what the visitor adds."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Dict, List, Optional

from kefu.desk.speaker import Speaker
from kefu.domain.policy.loader import Policy
from kefu.store.conversations import Conversation, Message, utcnow

PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "***"


class CallbackDialogue:
    def __init__(self, policy: Policy, speaker: Speaker) -> None:
        self.policy, self.speaker = policy, speaker

    def ask_phone_scene(self, now: datetime) -> str:
        """Why a call-back: everyone busy, or outside the agents' hours."""
        if self.policy.escalation.hours.covers(now):
            return "callback_ask_phone"
        return "callback_ask_phone_after_hours"

    def hours(self) -> Dict[str, str]:
        hours = self.policy.escalation.hours
        return {"open": f"{hours.open:%H:%M}", "close": f"{hours.close:%H:%M}"}

    async def ask_again(self, conversation: Conversation) -> Optional[Message]:
        """After an urgent interruption, the question the dialogue was waiting on."""
        stage = (conversation.summary.get("callback") or {"stage": "phone"}).get("stage", "")
        again = {"phone": self.ask_phone_scene(utcnow()), "time": "callback_ask_time"}
        if stage not in again:
            return None
        return await self.speaker.say(conversation, again[stage], **self.hours())

    async def answer(self, conversation: Conversation, text: str) -> List[Message]:
        """The visitor's message as the answer to the current question."""
        callback = dict(conversation.summary.get("callback") or {"stage": "phone"})
        if callback.get("stage") == "phone":
            match = PHONE.search(text.replace(" ", "").replace("-", ""))
            if not match:
                return [await self.speaker.say(conversation, "callback_phone_invalid")]
            callback.update(stage="time", phone=match.group(0))
            reply = await self.speaker.say(conversation, "callback_ask_time")
        elif callback.get("stage") == "time":
            callback.update(stage="booked", when=text.strip()[:60])
            reply = await self.speaker.say(conversation, "callback_booked", **self.booked(callback))
        else:
            # Booked: an agent reads it with the conversation; the visitor hears it arrived.
            if not self.speaker.ack_due(conversation):
                return []
            message = await self.speaker.say(conversation, "callback_ack", **self.booked(callback))
            return [await self.speaker.acknowledged(conversation, message)]
        conversation.summary["callback"] = callback
        await self.speaker.set_mode(conversation, summary=conversation.summary)
        return [reply]

    def booked(self, callback: Dict[str, Any]) -> Dict[str, str]:
        return {
            "phone": mask_phone(str(callback.get("phone") or "")),
            "when": str(callback.get("when") or ""),
            **self.hours(),
        }
