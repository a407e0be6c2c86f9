"""Calling a platform's HTTP API: aiohttp with a timeout on every call, and the access
token fetched once, cached (in memory and in the store, so desk replicas share it) and
fetched again when it expires or the platform says it is no longer valid."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from json import dumps
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple

import aiohttp

from kefu.store.channels import ChannelStore
from kefu.store.sql import utcnow

logger = logging.getLogger(__name__)
# The platform's codes for an access token that is wrong or has expired: fetch a new one.
TOKEN_INVALID = frozenset({40001, 40014, 42001})
REFRESH_MARGIN_S = 300  # a token is renewed this long before the platform's expiry


class PlatformError(Exception):
    """The platform could not be reached, or answered with something other than JSON."""


class ApiClient:
    """One platform account's API (WeChat Official Account, or WeCom)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        store: ChannelStore,
        channel: str,
        base_url: str,
        fetch_token: Callable[["ApiClient"], Awaitable[Tuple[str, int]]],
        timeout_s: float = 5.0,
    ) -> None:
        self.session, self.store, self.channel = session, store, channel
        self.base_url = base_url.rstrip("/")
        self._fetch_token = fetch_token
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._token: Optional[str] = None
        self._expires = utcnow()
        self._lock = asyncio.Lock()

    async def request(
        self,
        method: str,
        path: str,
        params: Optional[Dict[str, str]] = None,
        json: Any = None,
    ) -> Dict[str, Any]:
        """One call without the access token (fetching the token itself)."""
        # UTF-8 as it is (no \u escapes), as WeChat's own examples send Chinese text.
        data = None if json is None else dumps(json, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"} if data else None
        try:
            async with self.session.request(
                method,
                self.base_url + path,
                params=params,
                data=data,
                headers=headers,
                timeout=self.timeout,
            ) as response:
                if response.status >= 400:
                    raise PlatformError(f"{path}: HTTP {response.status}")
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
            raise PlatformError(f"{path}: {e!r}") from e
        if not isinstance(body, dict):
            raise PlatformError(f"{path}: not a JSON object")
        return body

    async def token(self, stale: Optional[str] = None) -> str:
        """The cached access token; a new one if none, expired, or `stale` is the one the
        platform just refused."""
        async with self._lock:
            now = utcnow()
            if self._token and self._token != stale and now < self._expires:
                return self._token
            shared = await self.store.get_value(self.channel, "access_token")
            if shared and shared != stale:
                self._token, self._expires = shared, now + timedelta(seconds=60)
                return shared
            token, expires_in = await self._fetch_token(self)
            lifetime = max(60, int(expires_in) - REFRESH_MARGIN_S)
            self._token, self._expires = token, now + timedelta(seconds=lifetime)
            await self.store.set_value(self.channel, "access_token", token, self._expires)
            logger.info("%s: new access token (valid %d s)", self.channel, expires_in)
            return token

    async def call(self, path: str, json: Any, method: str = "POST") -> Dict[str, Any]:
        """A call with the access token; once more with a new token when the platform
        says the token is invalid or expired (40001, 40014, 42001)."""
        token = await self.token()
        body = await self.request(method, path, params={"access_token": token}, json=json)
        if body.get("errcode") in TOKEN_INVALID:
            logger.info(
                "%s: access token refused (%s), fetching a new one",
                self.channel,
                body.get("errcode"),
            )
            token = await self.token(stale=token)
            body = await self.request(method, path, params={"access_token": token}, json=json)
        return body
