"""The website widget: one tag on a shop's page, the chat in an iframe from the desk.

GET /widget.js   the loader the shop's page includes (static/widget.js);
GET /widget/config  the Origin check: answered (with CORS) only for KEFU_ALLOWED_ORIGINS,
                 so the loader draws nothing on any other site;
GET /widget      the chat page for the iframe, with `frame-ancestors` naming only the
                 allowed origins: another site's frame of it stays empty.
Conversations opened there are `"channel": "widget"`; a `topic` (data-topic, a topic of
policy/faq.yml) is answered right after the greeting.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from aiohttp import web
from yarl import URL

from kefu.desk.inputs import error
from kefu.desk.keys import CONFIG
from kefu.domain import faq
from kefu.domain.phrasing.context import ReplyContext
from kefu.store.conversations import Conversation, Message

if TYPE_CHECKING:
    from kefu.desk.service import Desk

logger = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parents[1] / "static"
LANG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$")


def csp(allowed: tuple) -> str:
    ancestors = " ".join(["'self'", *allowed])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' ws: wss:; frame-ancestors {ancestors}; base-uri 'none'; "
        "form-action 'none'"
    )


def origin_of(value: Optional[str]) -> Optional[str]:
    """scheme://host[:port] of a URL or an origin; None for anything else."""
    if not value or value == "null":
        return None
    try:
        url = URL(value)
    except ValueError:
        return None
    if url.scheme not in ("http", "https") or not url.host:
        return None
    return str(url.origin())


def allowed_origin(request: web.Request, origin: Optional[str]) -> bool:
    return origin is not None and origin in request.app[CONFIG].allowed_origins


async def loader(request: web.Request) -> web.StreamResponse:
    response = web.FileResponse(
        STATIC / "widget.js",
        headers={
            "Content-Type": "application/javascript; charset=utf-8",
            "Cache-Control": "public, max-age=300",
            "Cross-Origin-Resource-Policy": "cross-origin",  # any shop's page may load it
        },
    )
    return response


async def config(request: web.Request) -> web.Response:
    origin = request.headers.get("Origin")
    if not allowed_origin(request, origin_of(origin)):
        # No Access-Control-Allow-Origin: the page on that site cannot read this answer.
        return error(403, "origin_not_allowed", "此网站未获准嵌入在线客服。", allowed=False)
    response = web.json_response({"allowed": True})
    response.headers["Access-Control-Allow-Origin"] = str(origin)
    response.headers["Vary"] = "Origin"
    return response


async def frame(request: web.Request) -> web.Response:
    allowed = request.app[CONFIG].allowed_origins
    headers = {"Content-Security-Policy": csp(allowed), "Referrer-Policy": "no-referrer"}
    # The browser enforces frame-ancestors; a page that says (or whose Referer says) it is
    # on another site is not even given the chat.
    claimed = [origin_of(request.query.get("host")), origin_of(request.headers.get("Referer"))]
    for origin in claimed:
        own = origin is not None and origin.split("://", 1)[1] == request.host
        if origin is not None and not own and origin not in allowed:
            logger.info("widget refused for %s", origin)
            page = (
                '<!doctype html><html lang="zh-CN"><meta charset="utf-8">'
                "<title>在线客服</title><p>此网站未获准嵌入在线客服。</p></html>"
            )
            return web.Response(text=page, status=403, content_type="text/html", headers=headers)
    html = (STATIC / "widget.html").read_text(encoding="utf-8")
    lang = request.query.get("lang", "zh-CN")
    if LANG.match(lang):
        html = html.replace('<html lang="zh-CN">', f'<html lang="{lang}">', 1)
    return web.Response(text=html, content_type="text/html", headers=headers)


async def answer_topic(desk: "Desk", conversation: Conversation, topic: str) -> Optional[Message]:
    """The widget's greeting topic: that FAQ topic's answer right after the greeting, as
    the bot would give it (the operator's text, rendered and guarded)."""
    entry = desk.policy.faq.get(topic)
    if entry is None:
        return None
    guard = desk.speaker.guard
    context = ReplyContext(
        script=conversation.summary.get("script", "unknown"),
        timezone=conversation.summary.get("timezone"),
    )
    text, facts = faq.choose(entry, {})
    values = {**guard.variables(context), **faq.policy_values(desk.policy)}
    rendered = guard.apply(faq.render(text, {**values, **facts}), context)
    if not rendered:
        return None
    conversation.summary["topic"] = topic
    await desk.store.update(conversation.id, summary=conversation.summary)
    message = await desk.speaker.post(conversation, "bot", rendered)
    await desk.speaker.tell_rasa(conversation, [{"event": "bot", "text": rendered}])
    return message
