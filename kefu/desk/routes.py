"""Every URL the desk serves."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from kefu.desk import handlers as h
from kefu.desk import review
from kefu.desk.channels import wechat, wecom, widget

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
    r.add_get("/readyz", h.readyz)
    # Channels: the widget a shop's page embeds, and the platforms' callbacks.
    r.add_get("/widget.js", widget.loader)
    r.add_get("/widget/config", widget.config)
    r.add_get("/widget", widget.frame)
    r.add_get("/channels/wechat", wechat.callback_get)
    r.add_post("/channels/wechat", wechat.callback_post)
    r.add_get("/channels/wecom", wecom.callback_get)
    r.add_post("/channels/wecom", wecom.callback_post)
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
    # A support team: statuses, transfer, the console's lists, the supervisor (issue 16).
    r.add_get("/supervisor", page("supervisor.html"))
    r.add_post(agent + "/transfer", h.agent_transfer)
    r.add_post("/api/agent/status", h.agent_status)
    r.add_get("/api/agent/me", h.agent_me)
    r.add_post("/api/agent/logout", h.agent_logout)
    r.add_get("/api/agent/counts", h.agent_counts)
    r.add_get("/api/agent/agents", h.agent_colleagues)
    r.add_post("/api/supervisor/agents", h.supervisor_create_agent)
    r.add_get("/api/supervisor/agents", h.supervisor_agents)
    r.add_get("/api/supervisor/metrics", h.supervisor_metrics)
    r.add_get("/api/supervisor/distributions", h.supervisor_distributions)
    r.add_get("/api/supervisor/quality", h.supervisor_quality)
    review.setup(r)  # /review, /api/review…, the agents' correction flag
