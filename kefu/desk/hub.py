"""Live events to the pages: each conversation's websockets, and every agent console.

One desk process fans out in memory. With KEFU_REDIS_URL set, every event is
published on Redis and each replica delivers what it receives, so a visitor on
one replica and an agent on another see each other's messages at once.

Delivery never holds up the request that caused it: each websocket has its own bounded
outbox and writer task, so publishing only queues, sockets are written concurrently and
in order, and a page that stops reading (a send over SEND_TIMEOUT_S, or a full outbox) is
closed; it reconnects and replays what it missed from its last sequence number.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any, Dict, Optional, Set

from aiohttp import web

logger = logging.getLogger(__name__)
CHANNEL = "kefu:desk:events"
SEND_TIMEOUT_S = 5.0
OUTBOX_LIMIT = 256


class Subscriber:
    """One page's websocket: an outbox and the task that writes it, in order."""

    def __init__(self, ws: web.WebSocketResponse, conversation_id: Optional[str]) -> None:
        self.ws = ws
        self.conversation_id = conversation_id
        self._outbox: asyncio.Queue[Optional[str]] = asyncio.Queue(OUTBOX_LIMIT)
        self._writer = asyncio.create_task(self._write())

    def offer(self, data: str) -> None:
        """Queues `data`; a page too slow to keep up is closed (it will replay)."""
        if self._writer.done():
            return
        try:
            self._outbox.put_nowait(data)
        except asyncio.QueueFull:
            logger.info("websocket outbox full: closing a page that stopped reading")
            self._writer.cancel()
            asyncio.ensure_future(self._close())

    def offer_json(self, payload: Dict[str, Any]) -> None:
        self.offer(json.dumps(payload, ensure_ascii=False))

    async def _write(self) -> None:
        while True:
            data = await self._outbox.get()
            if data is None or self.ws.closed:
                return
            try:
                await asyncio.wait_for(self.ws.send_str(data), SEND_TIMEOUT_S)
            except asyncio.TimeoutError:
                logger.info("websocket send took over %.0fs: closing the page", SEND_TIMEOUT_S)
                await self._close()
                return
            except (ConnectionError, RuntimeError):
                return  # gone; the page reconnects and replays from its last sequence number

    async def _close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(code=1013, message=b"too slow"), 1.0)

    async def stop(self) -> None:
        """Lets the writer send what is queued (bounded by the send timeout), then ends it."""
        if not self._writer.done():
            with contextlib.suppress(asyncio.QueueFull):
                self._outbox.put_nowait(None)
            try:
                await asyncio.wait_for(asyncio.shield(self._writer), SEND_TIMEOUT_S)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer


class Hub:
    def __init__(self) -> None:
        self.visitors: Dict[str, Set[Subscriber]] = {}
        self.agents: Set[Subscriber] = set()
        self.redis: Any = None
        self._listener: Optional[asyncio.Task] = None

    # --- pages come and go ---------------------------------------------------------
    def subscribe(self, ws: web.WebSocketResponse, conversation_id: Optional[str]) -> Subscriber:
        """A visitor's page (its conversation) or, with no conversation, an agent console."""
        subscriber = Subscriber(ws, conversation_id)
        if conversation_id is None:
            self.agents.add(subscriber)
        else:
            self.visitors.setdefault(conversation_id, set()).add(subscriber)
        return subscriber

    async def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber.conversation_id is None:
            self.agents.discard(subscriber)
        else:
            group = self.visitors.get(subscriber.conversation_id, set())
            group.discard(subscriber)
            if not group:
                self.visitors.pop(subscriber.conversation_id, None)
        await subscriber.stop()

    # --- events ----------------------------------------------------------------------
    async def start_redis(self, url: str) -> None:
        import redis.asyncio as aioredis

        self.redis = aioredis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(CHANNEL)
        self._listener = asyncio.create_task(self._listen(pubsub))

    async def _listen(self, pubsub: Any) -> None:
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a Redis hiccup: keep listening
                logger.warning("redis pub/sub: %s", e)
                await asyncio.sleep(1)
                continue
            if message and message.get("type") == "message":
                event = json.loads(message["data"])
                self.deliver(event["conversation_id"], event["payload"])

    async def publish(self, conversation_id: str, payload: Dict[str, Any]) -> None:
        if self.redis is not None:
            data = json.dumps(
                {"conversation_id": conversation_id, "payload": payload}, ensure_ascii=False
            )
            try:
                await self.redis.publish(CHANNEL, data)
                return
            except Exception as e:  # deliver locally; pages replay what they missed anyway
                logger.warning("redis publish failed, delivering locally: %s", e)
        self.deliver(conversation_id, payload)

    def deliver(self, conversation_id: str, payload: Dict[str, Any]) -> None:
        """Queues the event for the conversation's pages and every agent console; no wait."""
        data = json.dumps({"conversation_id": conversation_id, **payload}, ensure_ascii=False)
        for subscriber in [*self.visitors.get(conversation_id, ()), *self.agents]:
            subscriber.offer(data)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self.redis is not None:
            # redis-py 4 has close(); 5 renamed it aclose()
            closing = getattr(self.redis, "aclose", None) or self.redis.close
            with contextlib.suppress(Exception):
                await closing()
        subscribers = [s for group in self.visitors.values() for s in group] + list(self.agents)
        await asyncio.gather(*(s.stop() for s in subscribers), return_exceptions=True)
        for subscriber in subscribers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    subscriber.ws.close(code=1001, message=b"server shutdown"), 1.0
                )
