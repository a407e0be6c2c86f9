"""Every text the desk sends, and every change of a conversation's mode.

A text is a policy phrase rendered with its values, passed through the phrasing guard,
stored, then sent live; a mode change is a conditional transition in the store, then
announced to the pages. Rasa's tracker hears what was said while a human has the chat.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Dict, List, Optional, Protocol, Sequence

from kefu.desk.hub import Hub
from kefu.desk.rasa_client import RasaClient, RasaUnavailable
from kefu.domain.phrasing.context import ReplyContext
from kefu.domain.phrasing.guard import Guard
from kefu.domain.policy.loader import Policy
from kefu.store.conversations import Conversation, ConversationStore, Message, utcnow

logger = logging.getLogger(__name__)


class Outbound(Protocol):
    """Where the desk's messages and mode changes go besides the pages."""

    async def deliver(self, conversation: Conversation, message: Message) -> None: ...

    async def mode_changed(self, conversation: Conversation) -> None: ...


class NotAllowed(Exception):
    """An action that does not fit the conversation's state (an HTTP 409)."""


class Speaker:
    def __init__(
        self, policy: Policy, store: ConversationStore, hub: Hub, rasa: RasaClient
    ) -> None:
        self.policy, self.store, self.hub, self.rasa = policy, store, hub, rasa
        self.guard = Guard(policy)
        # The channels (kefu.desk.channels): what the desk says also goes out through the
        # visitor's platform (WeChat, WeCom); None for a desk with no channels.
        self.outbound: Optional[Outbound] = None

    def render(self, conversation: Conversation, scene: str, **values: Any) -> str:
        phrase = self.policy.phrase(scene)
        if phrase is None:  # the loader guarantees the desk's scenes; be safe anyway
            phrase = self.policy.phrases["safe_fallback"]
        context = ReplyContext(
            script=conversation.summary.get("script", "unknown"),
            timezone=conversation.summary.get("timezone"),
        )
        variables = {**self.guard.variables(context), **{k: str(v) for k, v in values.items()}}
        try:
            text = phrase.text.format(**variables)
        except (KeyError, IndexError):
            logger.warning("phrase %s is missing a value", scene)
            text = self.policy.phrases["safe_fallback"].text
        return self.guard.apply(text, context) or ""

    async def post(self, conversation: Conversation, sender: str, text: str) -> Message:
        """Store a message, then send it live to the pages that watch the conversation."""
        message = await self.store.add_message(conversation.id, sender, text)
        await self.hub.publish(conversation.id, {"type": "message", **message.as_dict()})
        if self.outbound is not None and sender != "visitor":
            await self.outbound.deliver(conversation, message)
        return message

    async def say(
        self, conversation: Conversation, scene: str, sender: str = "bot", **values: Any
    ) -> Message:
        return await self.post(conversation, sender, self.render(conversation, scene, **values))

    async def set_mode(
        self, conversation: Conversation, from_states: Sequence[str] = (), **values: Any
    ) -> None:
        """Stores and announces a change; a status changes only from `from_states`, in one
        conditional statement (NotAllowed when another request changed it first)."""
        if "status" in values:
            if not await self.store.transition(conversation.id, from_states, **values):
                current = await self.store.get(conversation.id)
                raise NotAllowed(f"conversation is {current.status if current else 'gone'}")
        else:
            await self.store.update(conversation.id, **values)
        await self.announce(conversation, **values)

    async def announce(self, conversation: Conversation, **values: Any) -> None:
        """The conversation as stored now (`values` just written), told to the pages."""
        for key, value in values.items():
            setattr(conversation, key, value)
        if self.outbound is not None and "status" in values:
            await self.outbound.mode_changed(conversation)
        await self.hub.publish(
            conversation.id,
            {
                "type": "mode",
                "mode": conversation.status,
                "reason": conversation.reason,
                "priority": conversation.priority,
                "agent": conversation.agent,
            },
        )

    async def tell_rasa(self, conversation: Conversation, events: List[Dict[str, Any]]) -> None:
        """Keep Rasa's tracker complete while a human has the conversation."""
        try:
            await self.rasa.append(conversation.id, events)
        except RasaUnavailable as e:
            logger.warning("tracker of %s not updated: %s", conversation.id, e)

    # --- pacing acknowledgements to a waiting visitor ----------------------------
    def ack_due(self, conversation: Conversation) -> bool:
        """At most one acknowledgement every `waiting.ack_every_s` seconds."""
        last = conversation.summary.get("last_ack_at")
        if not last:
            return True
        elapsed = (utcnow() - datetime.fromisoformat(last)).total_seconds()
        return elapsed >= self.policy.service.ack_every_s

    async def acknowledged(self, conversation: Conversation, message: Message) -> Message:
        conversation.summary["last_ack_at"] = utcnow().isoformat()
        await self.store.update(conversation.id, summary=conversation.summary)
        return message
