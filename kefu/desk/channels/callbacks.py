"""What the platforms' callback URLs share: finding the configured channel, the answer
when it is not configured, and the URL check (GET with `echostr`) both WeChat and WeCom
make before they send anything."""

from __future__ import annotations

from typing import Awaitable, Callable, Optional, Type, TypeVar

from aiohttp import web

from kefu.desk.channels.base import Channel
from kefu.desk.channels.crypto import CryptoError, SignatureError
from kefu.desk.inputs import error

C = TypeVar("C", bound=Channel)


def configured(request: web.Request, name: str, kind: Type[C]) -> Optional[C]:
    """The channel `name` of this desk, or None when it is not configured."""
    from kefu.desk.keys import CHANNELS

    hub = request.app.get(CHANNELS)
    channel = hub.channels.get(name) if hub is not None else None
    return channel if isinstance(channel, kind) else None


def not_configured(detail: str) -> web.Response:
    return error(404, "channel_off", detail)


def url_check(
    name: str, kind: Type[Channel], detail: str
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The GET handler of a callback URL: the echo string when the signature holds."""

    async def callback_get(request: web.Request) -> web.StreamResponse:
        channel = configured(request, name, kind)
        if channel is None:
            return not_configured(detail)
        try:
            echostr = channel.verify_url(dict(request.query))  # type: ignore[attr-defined]
        except (SignatureError, CryptoError):
            return error(403, "bad_signature", "签名校验失败。")
        return web.Response(text=echostr, content_type="text/plain")

    return callback_get
