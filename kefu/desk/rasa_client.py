"""The desk's client for Rasa on loopback: the REST webhook and the HTTP API."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional
from urllib.parse import quote

import aiohttp


class RasaUnavailable(Exception):
    """Rasa did not answer in time, or answered with an error."""


class RasaClient:
    def __init__(self, session: aiohttp.ClientSession, url: str, token: str, timeout_s: float):
        self.session, self.url, self.token = session, url.rstrip("/"), token
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def _post(self, path: str, body: Any, params: Optional[Dict[str, str]] = None) -> Any:
        params = dict(params or {})
        if self.token and not path.startswith("/webhooks/"):
            params["token"] = self.token
        try:
            async with self.session.post(
                self.url + path, json=body, params=params, timeout=self.timeout
            ) as response:
                if response.status >= 400:
                    raise RasaUnavailable(f"{path}: HTTP {response.status}")
                return await response.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
            raise RasaUnavailable(f"{path}: {e!r}") from e

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
