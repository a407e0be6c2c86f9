"""The review page for supervisors (/review) and the agents' "the bot got this wrong" flag.

Thin handlers over kefu.tools.review (the same inbox as `kefu review list`) and
kefu.tools.nludata (the same labelling as `kefu review label`); signed-in agents only,
with the agent API's bearer token. The tracker store is the one Rasa's endpoints file
names (`KEFU_RASA_ENDPOINTS`, endpoints.yml by default).
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any, Dict

from aiohttp import web

from kefu.desk.handlers import _agent, _conversation, _int, _supervisor
from kefu.desk.inputs import BadInput, json_body, visible
from kefu.desk.keys import CONFIG, DESK
from kefu.paths import ROOT
from kefu.store.reviews import ReviewStore
from kefu.store.sql import store_url
from kefu.tools import review
from kefu.tools.nludata import DataError, TrainingData, clean_example

STATIC = Path(__file__).parent / "static"
ITEMS = 100  # items on the page
CONTEXTS = 3  # occurrences per item shown with the conversation around them


def setup(router: web.UrlDispatcher) -> None:
    router.add_get("/review", page)
    router.add_get("/api/review", listing)
    router.add_get("/api/review/intents", intents)
    router.add_post("/api/review/label", label)
    router.add_post(
        "/api/agent/conversations/{conversation_id}/messages/{seq}/correction", correction
    )


def sources(request: web.Request) -> review.Sources:
    endpoints = Path(os.environ.get("KEFU_RASA_ENDPOINTS") or "endpoints.yml")
    return review.Sources(
        request.app[CONFIG].database_url or store_url(),
        review.tracker_url(endpoints if endpoints.is_absolute() else ROOT / endpoints),
    )


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "review.html")


async def listing(request: web.Request) -> web.Response:
    await _supervisor(request)
    reason = request.query.get("reason") or None
    if reason is not None and reason not in review.REASONS:
        raise BadInput(422, "invalid_reason", f"reason 应为 {' / '.join(review.REASONS)} 之一。")
    try:
        since = review.parse_since(request.query.get("since"))
    except review.ReviewError:
        raise BadInput(422, "invalid_since", "since 应为日期（2026-12-01）或 7d / 24h。") from None
    db = request.app[DESK].store.db
    where = sources(request)
    try:
        items = await review.collect(where, since, [reason] if reason else None, db=db)
    except review.ReviewError as e:
        raise BadInput(503, "tracker_unavailable", f"读取对话记录失败：{e}") from None
    out = []
    for item in items[:ITEMS]:
        details = item.as_details()
        for occurrence in details["occurrences"][:CONTEXTS]:
            occurrence["context"] = await review.context(
                where, occurrence["conversation_id"], occurrence["seq"], db=db
            )
        out.append(details)
    return web.json_response({"items": out, "total": len(items), "reasons": list(review.REASONS)})


async def intents(request: web.Request) -> web.Response:
    await _supervisor(request)
    known = await asyncio.to_thread(TrainingData(ROOT).known_intents)
    return web.json_response({"intents": known})


async def label(request: web.Request) -> web.Response:
    """Adds a reviewed message to the training data, as `kefu review label` does."""
    await _supervisor(request)
    body = await json_body(request)
    text, intent = body.get("text"), body.get("intent")
    if not isinstance(text, str) or not isinstance(intent, str) or not intent:
        raise BadInput(422, "invalid_label", "需要 text 和 intent。")
    try:
        written = await asyncio.to_thread(_label, visible(text), visible(intent))
    except DataError as e:
        raise BadInput(409, "refused", str(e)) from None
    return web.json_response(written)


_LABELLING = threading.Lock()  # one label at a time: the files are edited in place


def _label(text: str, intent: str) -> Dict[str, Any]:
    with _LABELLING:
        data = TrainingData(ROOT)
        cleaned = clean_example(text)
        reason = data.refusal(cleaned, intent)
        if reason is not None:
            raise DataError(reason)
        path, line = data.append(cleaned, intent)
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return {"text": cleaned, "intent": intent, "file": str(shown), "line": line}


async def correction(request: web.Request) -> web.Response:
    """An agent flags a visitor message the bot misunderstood, with the intent meant."""
    agent = await _agent(request)
    conversation = await _conversation(request)
    seq = _int(request.match_info["seq"])
    body = await json_body(request)
    intent = body.get("intent")
    if not isinstance(intent, str) or not intent.strip():
        raise BadInput(422, "invalid_intent", "请选择正确的意图。")
    intent = visible(intent)
    known = await asyncio.to_thread(TrainingData(ROOT).known_intents)
    if intent not in known:
        raise BadInput(422, "unknown_intent", f"没有这个意图：{intent[:64]}")
    store = ReviewStore(request.app[DESK].store.db)
    message = await store.message(conversation.id, seq)
    if message is None:
        raise BadInput(404, "not_found", "没有这条消息。")
    if message.sender != "visitor":
        raise BadInput(422, "not_visitor", "只能标记访客发送的消息。")
    flagged = await store.correct(conversation.id, seq, message.text, intent, agent)
    return web.json_response(
        {
            "conversation_id": flagged.conversation_id,
            "seq": flagged.seq,
            "text": flagged.text,
            "intent": flagged.intent,
            "agent": flagged.agent,
        }
    )
