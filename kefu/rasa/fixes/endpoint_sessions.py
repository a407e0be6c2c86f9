"""EndpointConfig.session: one pooled HTTP session per endpoint and event loop.

Rasa opened a new session, and so a new connection, for every custom-action call. The
pooled session's idle connections close after 2 s, under the action server's 5 s
keep-alive, so a request never goes out on a connection the server is closing.
"""

from __future__ import annotations

import atexit
from typing import Any, Dict, Tuple

from kefu.rasa.fixes.base import Patch, RuntimeFix

KEEPALIVE_S = 2.0  # under Sanic's (the action server's) 5 s keep-alive timeout
_sessions: Dict[Tuple[int, int], Tuple[Any, Any, Any]] = {}


class _Borrowed:
    """`async with endpoint.session()` without closing the shared session at the end."""

    def __init__(self, session: Any) -> None:
        self.session = session

    async def __aenter__(self) -> Any:
        return self.session

    async def __aexit__(self, *exc: Any) -> None:
        return None


def endpoint_session(self: Any) -> Any:
    import asyncio

    import aiohttp
    from rasa.utils import endpoints

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # outside a loop: Rasa's own, for the caller to close
        return FIX.patch("session").call_original(self)
    key = (id(self), id(loop))
    entry = _sessions.get(key)
    if entry is not None and entry[0] is self and entry[1] is loop and not entry[2].closed:
        return _Borrowed(entry[2])
    auth = None
    if self.basic_auth:
        auth = aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"])
    session = aiohttp.ClientSession(
        headers=self.headers,
        auth=auth,
        timeout=aiohttp.ClientTimeout(total=endpoints.DEFAULT_REQUEST_TIMEOUT),
        connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_S),
    )
    _sessions[key] = (self, loop, session)
    return _Borrowed(session)


def close_sessions() -> None:
    """Closes the pooled sessions' connections; also at exit, when no loop may run."""
    while _sessions:
        _, (_, _, session) = _sessions.popitem()
        connector = session.connector
        if connector is not None:
            connector._close()  # synchronous; on a closed loop it only marks it closed


def _on_install() -> None:
    atexit.register(close_sessions)


def _on_uninstall() -> None:
    atexit.unregister(close_sessions)
    close_sessions()


FIX = RuntimeFix(
    name="endpoint_sessions",
    summary="one pooled HTTP session per endpoint and loop for custom-action calls",
    patches=[
        Patch(
            "rasa.utils.endpoints:EndpointConfig", "session", endpoint_session, "e55aa13d9d4fb4bc"
        )
    ],
    on_install=_on_install,
    on_uninstall=_on_uninstall,
)
