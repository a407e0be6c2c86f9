"""Cleaning what strangers send: JSON bodies, texts, and how often they send them."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections import defaultdict, deque
from typing import Any, Deque, Dict

from aiohttp import web

logger = logging.getLogger(__name__)

# Control characters (but newline and tab), zero-width and direction overrides, lone surrogates.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
    "\ud800-\udfff]"
)


class BadInput(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> web.Response:
        return error(self.status, self.code, self.message)


def error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": code, "message": message, **extra}, status=status)


async def json_body(request: web.Request) -> Dict[str, Any]:
    if not request.can_read_body:
        return {}
    raw = await request.read()
    try:
        body = json.loads(raw.decode("utf-8", "strict")) if raw.strip() else {}
    except (UnicodeDecodeError, ValueError):
        raise BadInput(400, "invalid_json", "请求内容不是有效的 JSON。") from None
    if not isinstance(body, dict):
        raise BadInput(400, "invalid_json", "请求内容应为 JSON 对象。")
    return body


def visible(text: str) -> str:
    """The text without control, zero-width and direction characters or lone surrogates."""
    return _INVISIBLE.sub("", text).strip()


def clean_text(value: Any, limit: int) -> str:
    if not isinstance(value, str):
        raise BadInput(422, "invalid_text", "text 必须是字符串。")
    text = visible(value)
    if not text:
        raise BadInput(422, "empty_text", "消息内容不能为空。")
    if len(text) > limit:
        raise BadInput(
            413,
            "text_too_long",
            f"消息不能超过{limit}个字符。",
        )
    return text


# A sliding one-minute window in one Redis sorted set per key, checked and counted in
# one step (a script), so every desk replica counts against the same window.
_WINDOW_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(ARGV[2] * 1000))
return 1
"""


class RateLimiter:
    """A sliding one-minute window per key (an IP, a conversation): in this process, or
    shared by every desk replica through Redis (`use_redis`, with KEFU_REDIS_URL)."""

    WINDOW_S = 60

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.hits: Dict[str, Deque[float]] = defaultdict(deque)
        self.redis: Any = None
        self._script: Any = None

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        window = self.hits[key]
        while window and now - window[0] > self.WINDOW_S:
            window.popleft()
        if len(window) >= self.per_minute:
            return False
        window.append(now)
        if len(self.hits) > 100_000:  # bounded memory under a flood of keys
            self.hits = defaultdict(deque, {k: v for k, v in self.hits.items() if v})
        return True

    def use_redis(self, url: str) -> None:
        import redis.asyncio as aioredis

        self.redis = aioredis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._script = self.redis.register_script(_WINDOW_SCRIPT)

    async def check(self, key: str) -> bool:
        """allow(), on the shared window when Redis is configured (this process's own
        window if Redis does not answer: a Redis outage never stops the chat)."""
        if self._script is None:
            return self.allow(key)
        try:
            allowed = await self._script(
                keys=["kefu:rate:" + key],
                args=[time.time(), self.WINDOW_S, self.per_minute, uuid.uuid4().hex],
            )
            return bool(int(allowed))
        except Exception as e:  # redis.exceptions.RedisError, OSError, timeouts
            logger.warning("rate limit on Redis failed, counting locally: %s", e)
            return self.allow(key)

    async def close(self) -> None:
        if self.redis is not None:
            closing = getattr(self.redis, "aclose", None) or self.redis.close
            try:
                await closing()
            except Exception:  # closing at shutdown: nothing left to protect
                pass
            self.redis = self._script = None
