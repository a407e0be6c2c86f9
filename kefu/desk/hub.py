"""Live events to the pages: each conversation's websockets, and every agent console.

One desk process fans out in memory. With KEFU_REDIS_URL set, every event is
published on Redis and each replica delivers what it receives, so a visitor on
one replica and an agent on another see each other's messages at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from typing import Any, Dict, Optional, Set

from aiohttp import web

logger = logging.getLogger(__name__)
CHANNEL = "kefu:desk:events"


class Hub:
    def __init__(self) -> None:
        self.visitors: Dict[str, Set[web.WebSocketResponse]] = defaultdict(set)
        self.agents: Set[web.WebSocketResponse] = set()
        self.redis: Any = None
        self._listener: Optional[asyncio.Task] = None

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
                await self._deliver(event["conversation_id"], event["payload"])

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
        await self._deliver(conversation_id, payload)

    async def _deliver(self, conversation_id: str, payload: Dict[str, Any]) -> None:
        data = json.dumps({"conversation_id": conversation_id, **payload}, ensure_ascii=False)
        targets = list(self.visitors.get(conversation_id, ())) + list(self.agents)
        for ws in targets:
            if ws.closed:
                continue
            try:
                await ws.send_str(data)
            except (ConnectionError, RuntimeError):
                pass  # the page reconnects and replays from its last sequence number

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            try:
                await self._listener
            except asyncio.CancelledError:
                pass
        if self.redis is not None:
            await self.redis.aclose()
        sockets = [ws for group in self.visitors.values() for ws in group] + list(self.agents)
        for ws in sockets:
            await ws.close(code=1001, message=b"server shutdown")
