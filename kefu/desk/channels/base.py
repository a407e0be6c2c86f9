"""One channel interface: every platform a visitor writes from is one `Channel`.

A channel turns what its platform sends into the desk's conversation model (the same
store, guard, escalation, queue and console: `ChannelHub.receive`) and delivers what the
desk says back through the platform's API (`Channel.send_text`). The desk's Speaker
hands every stored bot and agent message to `ChannelHub.deliver` and every change of mode
to `ChannelHub.mode_changed`; the hub sends it through the visitor's channel, or, while
a platform waits for a passive reply to its callback, collects it for that reply
(`Turn`). Adding DingTalk or Feishu is one module with one `Channel` subclass.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import timedelta
from typing import (
    TYPE_CHECKING,
    Any,
    Awaitable,
    Callable,
    ClassVar,
    Dict,
    List,
    Optional,
    Set,
    Tuple,
)

from kefu.desk.auth import new_token, token_hash
from kefu.desk.inputs import visible
from kefu.store.channels import ChannelStore
from kefu.store.conversations import Conversation, Message, utcnow

if TYPE_CHECKING:
    from kefu.desk.service import Desk

logger = logging.getLogger(__name__)

# `"channel"` in the agent API: the desk's own page, the embedded widget, the platforms.
CHANNELS = ("web", "widget", "wechat", "wecom")
# How long platform message ids are remembered for de-duplication (WeChat retries for
# about 15 s, WeCom's sync_msg keeps three days).
INBOUND_MEMORY = timedelta(days=4)


def mask_user_id(external_id: str) -> str:
    """A platform user id as agents see it: enough to tell two apart, not to reuse."""
    if len(external_id) <= 8:
        return external_id[:1] + "****"
    return external_id[:4] + "****" + external_id[-4:]


@dataclass(frozen=True)
class Delivery:
    """What a platform said to a message sent through its API."""

    ok: bool
    errcode: int = 0
    detail: str = ""  # for the agent, in Chinese

    def as_dict(self) -> Dict[str, Any]:
        return {"ok": self.ok, "errcode": self.errcode, "message": self.detail}


class Channel(ABC):
    """One platform. Subclasses set `name` and send texts; their callback handlers (in
    the same module, routed under /channels/<name> by routes.py) call `hub.receive`."""

    name: ClassVar[str]

    def __init__(self, hub: "ChannelHub") -> None:
        self.hub = hub

    @abstractmethod
    async def send_text(self, external_id: str, text: str) -> Delivery:
        """One text to the platform user through the platform's API (with a timeout)."""

    async def mode_changed(self, external_id: str, conversation: Conversation) -> None:  # noqa: B027
        """The desk's mode changed (bot, queued, agent, callback, closed)."""

    async def start(self) -> None:  # noqa: B027
        """Called once the desk is up."""

    async def close(self) -> None:  # noqa: B027
        """Called when the desk shuts down."""


Push = Callable[[Conversation, Message], Awaitable[None]]


class Turn:
    """What the desk says while a platform waits for the answer to its callback.

    While `open`, the messages are kept for a passive reply. When the platform's
    deadline comes first, `release` switches to sending: what was kept and everything
    after it goes out through the API, in order, by one pump task.
    """

    def __init__(self, spawn: Callable[[Awaitable[Any]], asyncio.Task]) -> None:
        self._spawn = spawn
        self.open = True
        self.kept: List[Tuple[Conversation, Message]] = []
        self._queue: Optional[asyncio.Queue[Optional[Tuple[Conversation, Message]]]] = None
        self.task: Optional[asyncio.Task] = None
        self.pump: Optional[asyncio.Task] = None

    def offer(self, conversation: Conversation, message: Message) -> None:
        if self.open:
            self.kept.append((conversation, message))
        elif self._queue is not None:
            self._queue.put_nowait((conversation, message))

    def finished(self) -> None:
        if self._queue is not None:
            self._queue.put_nowait(None)

    async def settle(self, deadline_s: float, push: Push) -> Optional[List[Message]]:
        """The messages for a passive reply when the desk answered within the deadline;
        otherwise None, and they (and any later ones) are pushed through the API."""
        assert self.task is not None
        await asyncio.wait({self.task}, timeout=deadline_s)
        self.open = False
        if self.task.done():
            return [message for _, message in self.kept]
        queue: asyncio.Queue[Optional[Tuple[Conversation, Message]]] = asyncio.Queue()
        for item in self.kept:
            queue.put_nowait(item)
        self.kept = []
        self._queue = queue

        async def pump() -> None:
            while (item := await queue.get()) is not None:
                await push(*item)

        self.pump = self._spawn(pump())
        return None


CURRENT_TURN: contextvars.ContextVar[Optional[Turn]] = contextvars.ContextVar(
    "kefu_channel_turn", default=None
)


class ChannelHub:
    """The desk's channels: inbound into conversations, outbound through each platform."""

    def __init__(self, desk: "Desk", store: ChannelStore) -> None:
        self.desk, self.store = desk, store
        self.channels: Dict[str, Channel] = {}
        self._tasks: Set[asyncio.Task] = set()

    def add(self, channel: Channel) -> None:
        self.channels[channel.name] = channel

    # --- inbound ------------------------------------------------------------------------
    async def conversation_for(
        self, channel: str, external_id: str, tries: int = 3
    ) -> Tuple[Conversation, bool]:
        """The platform user's open conversation, or a new one (True) linked to them.
        Replicas racing to open one for the same user agree on a single conversation."""
        desk = self.desk
        linked = await self.store.conversation_of(channel, external_id)
        current = await desk.store.get(linked) if linked else None
        if current is not None and current.status != "closed":
            return current, False
        conversation = await desk.store.create_conversation(
            uuid.uuid4().hex,
            token_hash(new_token()),  # platform users never hold a desk token
            channel=channel,
            channel_user=mask_user_id(external_id),
        )
        if await self.store.link(channel, external_id, conversation.id, replacing=linked):
            return conversation, True
        # Another replica linked the user first: ours was never used.
        await desk.store.transition(conversation.id, ("bot",), status="closed")
        if tries <= 1:
            raise RuntimeError(f"could not link a {channel} user to a conversation")
        return await self.conversation_for(channel, external_id, tries - 1)

    async def seen_before(self, channel: str, msg_key: str) -> bool:
        """A platform's retry of a message already received, on any replica."""
        return not await self.store.first_time(channel, msg_key)

    def receive(
        self,
        channel: str,
        external_id: str,
        text: Optional[str],
        metadata: Optional[Dict[str, Any]] = None,
        passive: bool = False,
    ) -> Turn:
        """Starts the desk's turn for one inbound message (`text` None: the user just
        arrived, e.g. followed the account) in its own task, so a platform's deadline
        never cuts it short. With `passive`, the replies are kept for the platform's
        answer to its callback (see Turn.settle); otherwise they are sent at once."""
        turn = Turn(self.background)
        token = CURRENT_TURN.set(turn if passive else None)
        try:
            turn.task = self.background(
                self._converse(channel, external_id, text, dict(metadata or {}), turn)
            )
        finally:
            CURRENT_TURN.reset(token)
        return turn

    async def _converse(
        self,
        channel: str,
        external_id: str,
        text: Optional[str],
        metadata: Dict[str, Any],
        turn: Turn,
    ) -> None:
        try:
            conversation, new = await self.conversation_for(channel, external_id)
            if new or text is None:
                await self.desk.greet(conversation, metadata)
            if text is not None:
                cleaned = visible(text)[: self.desk.config.max_text]
                if cleaned:
                    await self.desk.visitor_message(conversation, cleaned, metadata)
        finally:
            turn.finished()

    def background(self, coro: Awaitable[Any]) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                logger.error("channel task failed", exc_info=t.exception())

        task.add_done_callback(done)
        return task

    # --- outbound (the Speaker's Outbound) ---------------------------------------------
    async def deliver(self, conversation: Conversation, message: Message) -> None:
        if conversation.channel not in self.channels:
            return  # the desk's own pages: the websocket already has it
        turn = CURRENT_TURN.get()
        if turn is not None and (turn.open or turn.pump is not None):
            turn.offer(conversation, message)
            return
        await self.push(conversation, message)

    async def push(self, conversation: Conversation, message: Message) -> None:
        """Sends one message through the conversation's platform; a refusal is recorded
        and shown to the agents (never raised into the desk's flow)."""
        channel = self.channels[conversation.channel]
        external_id = await self.store.external_of(channel.name, conversation.id)
        if external_id is None:
            logger.warning("no %s user for conversation %s", channel.name, conversation.id)
            return
        try:
            delivery = await channel.send_text(external_id, message.text)
        except Exception as e:  # a bug in a channel must not break the conversation
            logger.exception("%s delivery failed", channel.name)
            delivery = Delivery(False, -1, f"发送失败：{e.__class__.__name__}")
        if delivery.ok:
            return
        logger.warning(
            "%s refused message %s/%s: %s %s",
            channel.name,
            conversation.id,
            message.seq,
            delivery.errcode,
            delivery.detail,
        )
        await self.store.add_failure(conversation.id, message.seq, channel.name, delivery.as_dict())
        await self.desk.hub.publish(
            conversation.id,
            {"type": "delivery", "seq": message.seq, "channel": channel.name, **delivery.as_dict()},
        )

    async def mode_changed(self, conversation: Conversation) -> None:
        channel = self.channels.get(conversation.channel)
        if channel is None:
            return
        external_id = await self.store.external_of(channel.name, conversation.id)
        if external_id is None:
            return
        try:
            await channel.mode_changed(external_id, conversation)
        except Exception:  # the platform's state is a mirror: never break the desk's flow
            logger.exception("%s: mode change not mirrored", channel.name)

    async def delivery_of(self, conversation_id: str, seq: int) -> Optional[Dict[str, Any]]:
        for failure in await self.store.failures(conversation_id):
            if failure["seq"] == seq:
                return failure
        return None

    # --- lifetime ------------------------------------------------------------------------
    async def start(self) -> None:
        for channel in self.channels.values():
            await channel.start()

    async def tick(self) -> None:
        await self.store.forget_inbound_before(utcnow() - INBOUND_MEMORY)

    async def close(self, grace_s: float = 10.0) -> None:
        """Lets turns in flight finish (bounded), then stops the channels."""
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for channel in self.channels.values():
            await channel.close()
