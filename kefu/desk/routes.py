"""Every URL the desk serves."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from kefu.desk import handlers as h
from kefu.desk import review

STATIC = Path(__file__).parent / "static"


def page(name: str):  # type: ignore[no-untyped-def]
    async def handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / name)

    return handler


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/", page("index.html"))
    r.add_get("/agent", page("agent.html"))
    r.add_static("/static/", STATIC)
    r.add_get("/healthz", h.healthz)
    conv = "/api/visitor/conversations/{conversation_id}"
    r.add_post("/api/visitor/conversations", h.open_conversation)
    r.add_post(conv + "/messages", h.visitor_message)
    r.add_get(conv + "/messages", h.visitor_history)
    r.add_post(conv + "/satisfaction", h.visitor_satisfaction)
    r.add_get(conv + "/ws", h.visitor_ws)
    agent = "/api/agent/conversations/{conversation_id}"
    r.add_post("/api/agent/login", h.agent_login)
    r.add_get("/api/agent/conversations", h.agent_conversations)
    r.add_get(agent, h.agent_conversation)
    r.add_post(agent + "/claim", h.agent_claim)
    r.add_post(agent + "/messages", h.agent_message)
    r.add_post(agent + "/release", h.agent_release)
    r.add_post(agent + "/close", h.agent_close)
    r.add_post("/api/agent/check", h.agent_check)
    r.add_get("/api/agent/phrases", h.agent_phrases)
    r.add_get("/api/agent/ws", h.agent_ws)
    review.setup(r)  # /review, /api/review…, the agents' correction flag
