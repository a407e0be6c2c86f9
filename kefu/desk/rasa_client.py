"""The desk's client for Rasa on loopback: the REST webhook and the HTTP API."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional
from urllib.parse import quote

import aiohttp


class RasaUnavailable(Exception):
    """Rasa did not answer in time, or answered with an error."""


class RasaClient:
    """One or more Rasa replicas (comma-separated URLs), tried in turn.

    Only a refused or reset connection moves on to the next replica: the message never
    reached Rasa. A timeout does not, since Rasa may have processed the message, and
    sending it again would answer it twice.
    """

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str, timeout_s: float):
        self.session, self.token = session, token
        self.urls = [u.strip().rstrip("/") for u in url.split(",") if u.strip()]
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._next = 0

    async def _post(self, path: str, body: Any, params: Optional[Dict[str, str]] = None) -> Any:
        params = dict(params or {})
        if self.token and not path.startswith("/webhooks/"):
            params["token"] = self.token
        start, self._next = self._next, (self._next + 1) % len(self.urls)
        last: Exception = RasaUnavailable("no Rasa URL configured")
        for i in range(len(self.urls)):
            url = self.urls[(start + i) % len(self.urls)]
            try:
                async with self.session.post(
                    url + path, json=body, params=params, timeout=self.timeout
                ) as response:
                    if response.status >= 400:
                        raise RasaUnavailable(f"{path}: HTTP {response.status}")
                    return await response.json(content_type=None)
            except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError) as e:
                last = e  # never reached this replica: try the next one
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
                raise RasaUnavailable(f"{path}: {e!r}") from e
        raise RasaUnavailable(f"{path}: no Rasa replica reachable ({last!r})") from last

    async def send(self, sender: str, text: str, metadata: Dict[str, Any]) -> List[Dict[str, Any]]:
        """A visitor message through the REST channel: the bot's replies, in order."""
        result = await self._post(
            "/webhooks/rest/webhook", {"sender": sender, "message": text, "metadata": metadata}
        )
        if not isinstance(result, list):
            raise RasaUnavailable("the REST channel answered with something other than a list")
        return result

    async def trigger(
        self, sender: str, intent: str, metadata: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        """Run an intent as if the visitor had said it (the opening greeting)."""
        result = await self._post(
            f"/conversations/{quote(sender, safe='')}/trigger_intent",
            {"name": intent, "entities": {}},
        )
        return list((result or {}).get("messages") or [])

    async def parse(self, text: str) -> Dict[str, Any]:
        """NLU only, no dialogue: used while a human has the conversation."""
        result = await self._post("/model/parse", {"text": text})
        return result if isinstance(result, dict) else {}

    async def append(self, sender: str, events: List[Dict[str, Any]]) -> None:
        """Add events to the tracker without predicting: the bot keeps the context."""
        await self._post(f"/conversations/{quote(sender, safe='')}/tracker/events", events)


class ActionServerProbe:
    """Is the action server up? Rasa leaves no trace in the tracker when a custom action
    fails, so the desk asks the action server itself (cached for a couple of seconds)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, ttl_s: float = 2.0) -> None:
        self.session, self.ttl_s = session, ttl_s
        self.urls = [u.strip().rstrip("/") for u in url.split(",") if u.strip()]
        self._checked_at = -1e9
        self._up = True

    async def _healthy(self, url: str) -> bool:
        try:
            async with self.session.get(
                url + "/health", timeout=aiohttp.ClientTimeout(total=1.0)
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False

    async def up(self) -> bool:
        """Up when any of the configured action servers answers (one per Rasa replica)."""
        if not self.urls:
            return True
        now = asyncio.get_running_loop().time()
        if now - self._checked_at < self.ttl_s:
            return self._up
        self._up = any(await asyncio.gather(*(self._healthy(u) for u in self.urls)))
        self._checked_at = now
        return self._up
