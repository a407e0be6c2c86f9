"""Thin HTTP handlers: check the request, call the Desk, shape the answer."""

from __future__ import annotations

import functools
import logging
from datetime import datetime, time, timezone
from typing import Any, Dict, Optional, Tuple
from zoneinfo import ZoneInfo

from aiohttp import WSMsgType, web

from kefu.desk.accounts import AGENT_STATUSES, AccountError
from kefu.desk.brief import readable
from kefu.desk.channels import widget
from kefu.desk.inputs import BadInput, clean_text, error, json_body, visible
from kefu.desk.keys import CHANNELS, CONFIG, DESK, LIMITER, READINESS
from kefu.desk.proxies import ClientAddress
from kefu.desk.service import NotAllowed
from kefu.store.conversations import Agent, Conversation

logger = logging.getLogger(__name__)


def bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query.get("token", "")


@functools.lru_cache(maxsize=8)
def _addresses(trusted: Tuple[str, ...]) -> ClientAddress:
    return ClientAddress(trusted)


def client_ip(request: web.Request) -> str:
    """The visitor's address: X-Forwarded-For only from a trusted proxy (kefu.desk.proxies)."""
    addresses = _addresses(request.app[CONFIG].trusted_proxies)
    return addresses.of(request.remote, request.headers.get("X-Forwarded-For"))


def reply_list(messages: Any) -> list:
    return [{"text": m.text, "seq": m.seq, "sender": m.sender} for m in messages]


def origin_ok(request: web.Request) -> bool:
    """Browsers send Origin on a websocket upgrade: it must be this site or an allowed one."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser
    allowed = request.app[CONFIG].allowed_origins
    return origin in allowed or origin.split("://", 1)[-1] == request.host


async def limited(request: web.Request, *keys: str) -> Optional[web.Response]:
    limiter = request.app[LIMITER]
    for key in keys:
        if not await limiter.check(key):
            return error(429, "rate_limited", "发送太频繁了，请您稍后再试。", retry_after=60)
    return None


# --- visitors -----------------------------------------------------------------


async def open_conversation(request: web.Request) -> web.Response:
    if (refused := await limited(request, "open:" + client_ip(request))) is not None:
        return refused
    body = await json_body(request)
    metadata: Dict[str, Any] = {}
    if isinstance(body.get("timezone"), str):
        metadata["timezone"] = visible(body["timezone"])[:64]
    if body.get("script") in ("simplified", "traditional"):  # the widget's page language
        metadata["script"] = body["script"]
    channel = body.get("channel", "web")
    if channel not in ("web", "widget"):  # the platforms' users arrive by their callbacks
        raise BadInput(422, "invalid_channel", "channel 只能是 web 或 widget。")
    conversation, token, replies = await request.app[DESK].open(metadata, channel=channel)
    if channel == "widget" and isinstance(body.get("topic"), str):  # data-topic
        answer = await widget.answer_topic(request.app[DESK], conversation, body["topic"][:64])
        replies = replies + ([answer] if answer else [])
    return web.json_response(
        {
            "conversation_id": conversation.id,
            "token": token,
            "replies": reply_list(replies),
            "mode": conversation.status,
        },
        status=201,
    )


async def _visitor(request: web.Request) -> Conversation:
    conversation = await request.app[DESK].authenticate_visitor(
        request.match_info["conversation_id"], bearer(request)
    )
    if conversation is None:  # unknown id and wrong token look the same
        raise BadInput(404, "not_found", "会话不存在或凭证无效。")
    return conversation


async def visitor_message(request: web.Request) -> web.Response:
    conversation = await _visitor(request)
    body = await json_body(request)
    text = clean_text(body.get("text"), request.app[CONFIG].max_text)
    refused = await limited(request, "ip:" + client_ip(request), "conv:" + conversation.id)
    if refused is not None:
        return refused
    metadata: Dict[str, Any] = {}
    if isinstance(body.get("timezone"), str):
        metadata["timezone"] = visible(body["timezone"])[:64]
    replies = await request.app[DESK].visitor_message(conversation, text, metadata)
    return web.json_response(
        {
            "replies": reply_list(replies),
            "mode": conversation.status,
            "queue": await request.app[DESK].queue_info(conversation),
        }
    )


async def visitor_history(request: web.Request) -> web.Response:
    conversation = await _visitor(request)
    after = _int(request.query.get("after", "0"))
    messages = await request.app[DESK].store.messages(conversation.id, after)
    return web.json_response(
        {
            "messages": [m.as_dict() for m in messages],
            "mode": conversation.status,
            "queue": await request.app[DESK].queue_info(conversation),
        }
    )


async def visitor_satisfaction(request: web.Request) -> web.Response:
    conversation = await _visitor(request)
    body = await json_body(request)
    score = body.get("score")
    if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
        raise BadInput(422, "invalid_score", "评分应为1到5的整数。")
    await request.app[DESK].satisfaction(conversation, score)
    return web.json_response({"ok": True})


async def visitor_ws(request: web.Request) -> web.StreamResponse:
    if not origin_ok(request):
        return error(403, "bad_origin", "不允许的来源。")
    conversation = await _visitor(request)
    return await _stream(request, conversation.id, _int(request.query.get("after", "0")))


async def _stream(
    request: web.Request, conversation_id: Optional[str], after: int
) -> web.StreamResponse:
    """Replay what the page missed (in order), then live events until it goes away."""
    desk = request.app[DESK]
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    # Subscribed before the replay, so nothing falls between; pages skip repeated seqs.
    subscriber = desk.hub.subscribe(ws, conversation_id)
    try:
        if conversation_id:
            for message in await desk.store.messages(conversation_id, after):
                subscriber.offer_json(
                    {"type": "message", "conversation_id": conversation_id, **message.as_dict()}
                )
            subscriber.offer_json({"type": "replayed", "conversation_id": conversation_id})
        async for frame in ws:  # pages only listen; a ping keeps proxies happy
            if frame.type == WSMsgType.TEXT and frame.data == "ping":
                subscriber.offer('{"type":"pong"}')
    finally:
        await desk.hub.unsubscribe(subscriber)
    return ws


def _int(raw: str) -> int:
    try:
        return max(0, int(raw))
    except ValueError:
        raise BadInput(422, "invalid_after", "after 必须是非负整数。") from None


# --- agents -------------------------------------------------------------------


async def agent_login(request: web.Request) -> web.Response:
    if (refused := await limited(request, "login:" + client_ip(request))) is not None:
        return refused
    body = await json_body(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise BadInput(422, "invalid_credentials", "请输入用户名和密码。")
    result = await request.app[DESK].accounts.login(visible(username)[:64], password[:256])
    if result is None:
        return error(401, "unauthorized", "用户名或密码错误。")
    token, expires = result
    account = await request.app[DESK].store.agent(username)
    return web.json_response(
        {
            "token": token,
            "expires_at": expires.isoformat(),
            "username": username,
            "role": account.role if account else "agent",
        }
    )


async def _account(request: web.Request) -> Agent:
    account = await request.app[DESK].accounts.account_for(bearer(request))
    if account is None:
        raise BadInput(401, "unauthorized", "请先登录。")
    return account


async def _agent(request: web.Request) -> str:
    return (await _account(request)).username


async def _supervisor(request: web.Request) -> Agent:
    account = await _account(request)
    if account.role != "supervisor":
        raise BadInput(403, "forbidden", "只有主管可以使用这个功能。")
    return account


async def _conversation(request: web.Request) -> Conversation:
    conversation = await request.app[DESK].store.get(request.match_info["conversation_id"])
    if conversation is None:
        raise BadInput(404, "not_found", "会话不存在。")
    return conversation


VIEWS = ("queue", "mine", "callback", "closed", "others")


async def agent_conversations(request: web.Request) -> web.Response:
    """Every handed-over conversation; `?view=queue|mine|callback|closed|others` one of the
    console's lists; `?q=` a search by conversation id, phone number or order id."""
    username = await _agent(request)
    store = request.app[DESK].store
    view, query = request.query.get("view"), visible(request.query.get("q", ""))[:64]
    if query:
        listing = await store.search(query)
    elif view:
        if view not in VIEWS:
            raise BadInput(422, "invalid_view", "view 应为 " + "、".join(VIEWS) + " 之一。")
        listing = await store.view(view, username, limit=_limit(request))
    else:
        listing = await store.handed_over()
    return web.json_response([c.as_listing() for c in listing])


def _limit(request: web.Request) -> int:
    return min(200, max(1, _int(request.query.get("limit", "100")) or 100))


async def agent_counts(request: web.Request) -> web.Response:
    username = await _agent(request)
    return web.json_response(await request.app[DESK].store.view_counts(username))


async def agent_conversation(request: web.Request) -> web.Response:
    await _agent(request)
    conversation = await _conversation(request)
    messages = await request.app[DESK].store.messages(conversation.id)
    failed = await request.app[CHANNELS].store.failures(conversation.id)
    return web.json_response(
        {
            **conversation.as_listing(),
            "brief": readable(conversation),
            "transcript": [m.as_dict() for m in messages],
            "delivery_failures": failed,  # what the visitor's platform refused
        }
    )


async def agent_claim(request: web.Request) -> web.Response:
    agent = await _agent(request)
    conversation = await _conversation(request)
    await request.app[DESK].claim(conversation, agent)
    return web.json_response(conversation.as_listing())


async def agent_message(request: web.Request) -> web.Response:
    agent = await _agent(request)
    conversation = await _conversation(request)
    text = clean_text((await json_body(request)).get("text"), request.app[CONFIG].max_text)
    verdict = request.app[DESK].check_agent_text(text)
    if not verdict["ok"]:
        await request.app[DESK].blocked(conversation, agent, text, verdict)
        return error(422, "phrasing", "这句话不符合服务用语规范，请修改后再发送。", **verdict)
    message = await request.app[DESK].agent_reply(conversation, agent, text)
    # Sent through the visitor's platform already (WeChat, WeCom): did it arrive there?
    failure = await request.app[CHANNELS].delivery_of(conversation.id, message.seq)
    delivery = failure or {"ok": True}
    return web.json_response({**message.as_dict(), "delivery": delivery})


async def agent_release(request: web.Request) -> web.Response:
    agent = await _agent(request)
    conversation = await _conversation(request)
    await request.app[DESK].release(conversation, agent)
    return web.json_response(conversation.as_listing())


async def agent_transfer(request: web.Request) -> web.Response:
    account = await _account(request)
    conversation = await _conversation(request)
    body = await json_body(request)
    to, note = body.get("to"), body.get("note")
    if not isinstance(to, str) or not visible(to):
        raise BadInput(422, "invalid_to", "请指定要转给的客服（to）。")
    if note is not None and not isinstance(note, str):
        raise BadInput(422, "invalid_note", "note 必须是字符串。")
    note = visible(note)[:500] if note else None
    await request.app[DESK].transfer(conversation, account, visible(to)[:64], note)
    return web.json_response(conversation.as_listing())


async def agent_status(request: web.Request) -> web.Response:
    username = await _agent(request)
    status = (await json_body(request)).get("status")
    if status not in AGENT_STATUSES:
        raise BadInput(422, "invalid_status", "status 应为 online、away 或 offline。")
    await request.app[DESK].set_status(username, status)
    return web.json_response({"username": username, "status": status})


async def agent_me(request: web.Request) -> web.Response:
    account = await _account(request)
    return web.json_response(
        {
            "username": account.username,
            "role": account.role,
            "status": account.status,
            "capacity": account.capacity,
        }
    )


async def agent_colleagues(request: web.Request) -> web.Response:
    """Who is there to transfer to: every agent's status, active chats and capacity."""
    await _agent(request)
    desk = request.app[DESK]
    return web.json_response(
        [
            {k: r[k] for k in ("username", "status", "active", "capacity")}
            for r in await desk.accounts.roster(desk.online_since())
        ]
    )


async def agent_logout(request: web.Request) -> web.Response:
    username = await _agent(request)
    await request.app[DESK].accounts.logout(username, bearer(request))
    return web.json_response({"username": username, "status": "offline"})


async def agent_close(request: web.Request) -> web.Response:
    await _agent(request)
    conversation = await _conversation(request)
    await request.app[DESK].close(conversation)
    return web.json_response(conversation.as_listing())


async def agent_check(request: web.Request) -> web.Response:
    await _agent(request)
    body = await json_body(request)
    text = body.get("text")
    if not isinstance(text, str):
        raise BadInput(422, "invalid_text", "text 必须是字符串。")
    text = visible(text)[: request.app[CONFIG].max_text]  # what a reply would carry
    return web.json_response(request.app[DESK].check_agent_text(text))


async def agent_phrases(request: web.Request) -> web.Response:
    """The agents' own quick replies (`quick_replies` in policy/phrasing.yml)."""
    await _agent(request)
    policy = request.app[DESK].policy
    return web.json_response([{"scene": p.scene, "text": p.text} for p in policy.quick_replies])


# --- supervisors -------------------------------------------------------------


async def supervisor_create_agent(request: web.Request) -> web.Response:
    await _supervisor(request)
    body = await json_body(request)
    try:
        created = await request.app[DESK].accounts.create(
            body.get("username"),
            body.get("password"),
            body.get("role", "agent"),
            body.get("capacity"),
        )
    except AccountError as e:
        return error(409 if e.code == "exists" else 422, e.code, str(e))
    return web.json_response(
        {"username": created.username, "role": created.role, "capacity": created.capacity},
        status=201,
    )


async def supervisor_agents(request: web.Request) -> web.Response:
    await _supervisor(request)
    desk = request.app[DESK]
    return web.json_response(await desk.accounts.roster(desk.online_since()))


def _since(request: web.Request) -> datetime:
    """`?since=` an ISO time (UTC when it names no zone); by default the start of today
    in the brand's time zone."""
    raw = request.query.get("since", "").strip()
    if not raw:
        zone = ZoneInfo(request.app[DESK].policy.brand.timezone)
        today = datetime.now(zone).date()
        return datetime.combine(today, time(0, 0), zone).astimezone(timezone.utc)
    try:
        since = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise BadInput(
            422, "invalid_since", "since 应为 ISO 时间，例如 2024-05-01T00:00:00+08:00。"
        ) from None
    if since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    return since.astimezone(timezone.utc)


async def supervisor_metrics(request: web.Request) -> web.Response:
    await _supervisor(request)
    return web.json_response(await request.app[DESK].metrics(_since(request)))


async def supervisor_distributions(request: web.Request) -> web.Response:
    await _supervisor(request)
    return web.json_response(await request.app[DESK].distributions(_since(request)))


async def supervisor_quality(request: web.Request) -> web.Response:
    await _supervisor(request)
    return web.json_response(await request.app[DESK].quality(_since(request)))


async def agent_ws(request: web.Request) -> web.StreamResponse:
    if not origin_ok(request):
        return error(403, "bad_origin", "不允许的来源。")
    await _agent(request)
    return await _stream(request, None, 0)


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers. Whether a message would be answered: /readyz."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    ready, components = await request.app[READINESS].check()
    if ready:
        return web.json_response({"status": "ready", "components": components})
    waiting = [name for name, state in components.items() if state != "ready"]
    return web.json_response(
        {
            "status": "not_ready",
            "not_ready": waiting,
            "components": components,
            "message": "服务正在启动或暂时不可用，请稍后再试。",
        },
        status=503,
    )


def not_allowed(e: NotAllowed) -> web.Response:
    return error(409, "conflict", str(e))
