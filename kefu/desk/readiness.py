"""GET /readyz: would a visitor's message be answered right now?

Ready only when Rasa has a model loaded (its /status answers; 409 while it is still
loading), an action server answers /health, and the store answers a query. Each check
has a short timeout, and the result is cached for a moment so a load balancer polling
every replica costs nothing. /healthz stays a liveness check (the process is up).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Dict, List, Optional, Tuple

import aiohttp

from kefu.desk.config import DeskConfig
from kefu.store.sql import Database

CHECK_TIMEOUT_S = 2.0
CACHE_S = 1.0


class Readiness:
    def __init__(self, session: aiohttp.ClientSession, config: DeskConfig, db: Database) -> None:
        self.session, self.config, self.db = session, config, db
        self._cached: Optional[Tuple[float, bool, Dict[str, str]]] = None
        self._lock = asyncio.Lock()

    async def _get(self, url: str, params: Optional[Dict[str, str]] = None) -> Tuple[int, Any]:
        async with self.session.get(
            url, params=params, timeout=aiohttp.ClientTimeout(total=CHECK_TIMEOUT_S)
        ) as response:
            body = await response.json(content_type=None) if response.status == 200 else None
            return response.status, body

    async def _rasa(self) -> str:
        """ "ready", or why not, for the first replica with a model (any one will do)."""
        reasons: List[str] = []
        for url in [u.strip().rstrip("/") for u in self.config.rasa_url.split(",") if u.strip()]:
            params = {"token": self.config.rasa_token} if self.config.rasa_token else None
            try:
                status, body = await self._get(url + "/status", params)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
                reasons.append(f"{url} unreachable ({e.__class__.__name__})")
                continue
            if status == 200 and isinstance(body, dict) and body.get("model_file"):
                return "ready"
            reasons.append(
                f"{url} has no model loaded yet" if status == 409 else f"{url} HTTP {status}"
            )
        return "; ".join(reasons) or "no Rasa URL configured"

    async def _actions(self) -> str:
        urls = [u.strip().rstrip("/") for u in self.config.action_server_url.split(",")]
        urls = [u for u in urls if u]
        if not urls:
            return "ready"  # the probe is off: no action server expected
        for url in urls:
            try:
                status, _ = await self._get(url + "/health")
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                continue
            if status == 200:
                return "ready"
        return "no action server answers /health"

    async def _store(self) -> str:
        try:
            await asyncio.wait_for(self.db.fetch("SELECT 1 AS ok"), CHECK_TIMEOUT_S * 4)
            return "ready"
        except Exception as e:  # StoreError, a timeout: not ready, and why
            return f"store unavailable ({e.__class__.__name__})"

    async def check(self) -> Tuple[bool, Dict[str, str]]:
        async with self._lock:
            now = time.monotonic()
            if self._cached and now - self._cached[0] < CACHE_S:
                return self._cached[1], self._cached[2]
            checks: List[Awaitable[str]] = [self._rasa(), self._actions(), self._store()]
            rasa, actions, store = await asyncio.gather(*checks)
            components = {"rasa": rasa, "action_server": actions, "store": store}
            ready = all(v == "ready" for v in components.values())
            self._cached = (time.monotonic(), ready, components)
            return ready, components
