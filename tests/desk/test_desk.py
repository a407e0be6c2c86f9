"""The desk's HTTP contract, against the real Rasa and action server of `kefu run`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket

import aiohttp
import pytest

from kefu.desk.app import init_app
from kefu.desk.config import ConfigError, DeskConfig
from kefu.desk.keys import DESK
from tests.conftest import always_open, never_open

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path, pg_url):
    """The same suite against the embedded SQLite file and a real PostgreSQL."""
    return f"sqlite:///{tmp_path / 'desk.db'}" if request.param == "sqlite" else pg_url


@pytest.fixture
def make_desk(aiohttp_client, stack, database_url, policy):
    async def make(policy_=None, rasa_url=None, **settings):
        config = DeskConfig(
            rasa_url=rasa_url or stack.rasa,
            rasa_token=stack.token,
            action_server_url=stack.actions,
            database_url=database_url,
            **settings,
        )
        return await aiohttp_client(init_app(config, policy_ or always_open(policy), timers=False))

    return make


@pytest.fixture
async def desk(make_desk):
    return await make_desk()


async def open_chat(client):
    response = await client.post("/api/visitor/conversations", json={"timezone": "Asia/Shanghai"})
    assert response.status == 201
    body = await response.json()
    return body["conversation_id"], body["token"], body


async def say(client, cid, token, text, status=200):
    response = await client.post(
        f"/api/visitor/conversations/{cid}/messages",
        json={"text": text},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == status, await response.text()
    return await response.json()


async def login(client, username="demo", password="demo"):
    response = await client.post(
        "/api/agent/login", json={"username": username, "password": password}
    )
    assert response.status == 200
    return {"Authorization": f"Bearer {(await response.json())['token']}"}


def texts(body):
    return [r["text"] for r in body["replies"]]


async def test_opening_carries_the_standard_greeting(desk, policy):
    _, token, body = await open_chat(desk)
    assert body["mode"] == "bot" and token
    [greeting] = texts(body)
    assert policy.brand.name in greeting and policy.brand.bot_name in greeting
    assert greeting.endswith("请问有什么可以帮您？")


async def test_bot_mode_answers_synchronously(desk):
    cid, token, _ = await open_chat(desk)
    body = await say(desk, cid, token, "帮我查一下订单2023112500123456")
    assert body["mode"] == "bot"
    assert any("顺丰速运" in t for t in texts(body))


async def test_ask_human_with_an_agent_online_is_queued_with_position_and_summary(desk):
    agent = await login(desk)  # an agent is online now
    cid, token, _ = await open_chat(desk)
    await say(desk, cid, token, "帮我查一下订单2023112500123456")
    body = await say(desk, cid, token, "我要转人工")
    assert body["mode"] == "queued"
    # Nobody ahead: 您是下一位, never 前面还有0位. (A loaded machine may add an honest
    # "please wait" before the hand-over: look for the phrases, not their positions.)
    assert any("转接人工客服" in t for t in texts(body)) and "您是下一位" in texts(body)[-1]
    assert body["queue"]["ahead"] >= 0 and body["queue"]["wait"].endswith("分钟")
    listing = await (await desk.get("/api/agent/conversations", headers=agent)).json()
    [mine] = [c for c in listing if c["conversation_id"] == cid]
    assert (mine["status"], mine["reason"]) == ("queued", "customer_request")
    assert mine["waiting_since"] and mine["priority"] == 40
    assert "ask_human" in mine["summary"]["intents"]
    assert mine["summary"]["slots"]["order_id"] == "2023112500123456"


async def test_nobody_online_takes_a_call_back(make_desk, policy):
    closed = never_open(policy)
    client = await make_desk(policy_=closed)
    cid, token, _ = await open_chat(client)
    body = await say(client, cid, token, "转人工")
    assert body["mode"] == "callback" and "手机号码" in texts(body)[-1]
    assert "格式" in texts(await say(client, cid, token, "我的号码是123"))[0]
    assert "时间" in texts(await say(client, cid, token, "138 0013 8000"))[0]
    booked = texts(await say(client, cid, token, "明天上午"))[0]
    assert "138****8000" in booked and "明天上午" in booked
    agent = await login(client)
    detail = await (await client.get(f"/api/agent/conversations/{cid}", headers=agent)).json()
    assert detail["status"] == "callback"
    assert detail["summary"]["callback"] == {
        "stage": "booked",
        "phone": "13800138000",
        "when": "明天上午",
    }


async def test_safety_jumps_the_queue(desk):
    agent = await login(desk)
    first, t1, _ = await open_chat(desk)
    await say(desk, first, t1, "转人工")
    second, t2, _ = await open_chat(desk)
    body = await say(desk, second, t2, "充电器冒烟了，好危险")
    assert body["mode"] == "queued" and body["queue"]["ahead"] == 0
    listing = await (await desk.get("/api/agent/conversations", headers=agent)).json()
    order = [c["conversation_id"] for c in listing]
    assert order.index(second) < order.index(first)
    assert listing[order.index(second)]["reason"] == "safety"


@pytest.mark.parametrize(
    "lines, reason",
    [
        (["垃圾客服，什么玩意"], "abuse"),
        (["我要去12315投诉你们"], "legal_media"),
        (["你们必须赔偿我的损失"], "compensation"),
        (["叫你们经理出来"], "supervisor"),
        (["我都问了第三次了！！！", "你们到底怎么回事？？？真是忍无可忍"], "anger"),
        (["帮我查一下订单", "1234", "单号是 987654"], "bot_failure"),
    ],
)
async def test_each_reason_reaches_the_desk(desk, lines, reason):
    await login(desk)
    cid, token, _ = await open_chat(desk)
    for line in lines[:-1]:
        assert (await say(desk, cid, token, line))["mode"] == "bot"
    body = await say(desk, cid, token, lines[-1])
    assert body["mode"] == "queued"
    conversation = await desk.app[DESK].store.get(cid)
    assert conversation.reason == reason


async def test_agent_claims_replies_with_a_checked_phrase_and_releases(desk, stack):
    agent = await login(desk)
    cid, token, _ = await open_chat(desk)
    await say(desk, cid, token, "帮我查订单2023112500123456")
    await say(desk, cid, token, "我要人工客服")
    async with desk.ws_connect(f"/api/visitor/conversations/{cid}/ws?token={token}&after=0") as ws:
        replayed = await read_until(ws, lambda e: e["type"] == "replayed")
        seqs = [e["seq"] for e in replayed if e["type"] == "message"]
        assert seqs == sorted(seqs) and seqs[0] == 1
        assert (
            await desk.post(f"/api/agent/conversations/{cid}/claim", headers=agent)
        ).status == 200
        joined = await read_until(ws, lambda e: e.get("sender") == "agent")
        assert "人工客服demo" in joined[-1]["text"]

        blocked = await desk.post(
            f"/api/agent/conversations/{cid}/messages",
            headers=agent,
            json={"text": "你好，这个我不知道"},
        )
        verdict = await blocked.json()
        assert blocked.status == 422 and verdict["error"] == "phrasing"
        assert {v["rule"] for v in verdict["violations"]} >= {"dont_know"}
        sent = await desk.post(
            f"/api/agent/conversations/{cid}/messages",
            headers=agent,
            json={"text": "您好，您的订单正在运输中，预计明天送达。"},
        )
        assert sent.status == 200
        assert (await read_until(ws, lambda e: e.get("sender") == "agent"))[-1]["text"].startswith(
            "您好，您的订单"
        )

        # The bot is silent while a human has the chat.
        assert (await say(desk, cid, token, "好的，那我等等"))["replies"] == []
        assert (
            await desk.post(f"/api/agent/conversations/{cid}/release", headers=agent)
        ).status == 200
        resumed = await read_until(ws, lambda e: e.get("sender") == "bot")
        assert "请问还有什么可以帮您" in resumed[-1]["text"]
    body = await say(desk, cid, token, "谢谢你")
    assert body["mode"] == "bot" and body["replies"]

    # Rasa heard everything, and the hand-over reason was cleared on release.
    async with aiohttp.ClientSession() as session:
        url = f"{stack.rasa}/conversations/{cid}/tracker?token={stack.token}"
        async with session.get(url) as response:
            tracker = await response.json()
    said = [e.get("text") for e in tracker["events"] if e["event"] == "user"]
    assert "好的，那我等等" in said
    bot = [e.get("text") for e in tracker["events"] if e["event"] == "bot"]
    assert "您好，您的订单正在运输中，预计明天送达。" in bot
    assert tracker["slots"]["handoff_reason"] is None


async def read_until(ws, done, timeout=15):
    events = []
    while True:
        message = await ws.receive(timeout=timeout)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        event = json.loads(message.data)
        events.append(event)
        if done(event):
            return events


async def test_urge_while_queued_gets_a_fresh_estimate(desk):
    await login(desk)
    cid, token, _ = await open_chat(desk)
    await say(desk, cid, token, "转人工")
    body = await say(desk, cid, token, "还要等多久啊")
    assert body["mode"] == "queued" and "久等" in texts(body)[0] and "预计还需要" in texts(body)[0]


async def test_close_asks_for_a_rating_and_stores_it(desk, tmp_path):
    agent = await login(desk)
    cid, token, _ = await open_chat(desk)
    await say(desk, cid, token, "转人工")
    await desk.post(f"/api/agent/conversations/{cid}/claim", headers=agent)
    assert (await desk.post(f"/api/agent/conversations/{cid}/close", headers=agent)).status == 200
    history = await (
        await desk.get(
            f"/api/visitor/conversations/{cid}/messages",
            headers={"Authorization": f"Bearer {token}"},
        )
    ).json()
    assert history["mode"] == "closed" and "打个分" in history["messages"][-1]["text"]
    rated = await desk.post(
        f"/api/visitor/conversations/{cid}/satisfaction",
        json={"score": 5},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert rated.status == 200
    bad = await desk.post(
        f"/api/visitor/conversations/{cid}/satisfaction",
        json={"score": 9},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert bad.status == 422
    [survey] = await desk.app[DESK].records.find(kind="survey", conversation_id=cid)
    assert survey.data["score"] == 5
    assert "会话已经结束" in texts(await say(desk, cid, token, "还在吗"))[0]


async def test_idle_visitor_is_prompted_twice_then_closed_across_a_restart(
    make_desk, policy, tmp_path
):
    quick = dataclasses.replace(
        always_open(policy), service=dataclasses.replace(policy.service, idle_after_s=0.2)
    )
    first = await make_desk(policy_=quick)
    cid, token, _ = await open_chat(first)
    await asyncio.sleep(0.3)
    assert await first.app[DESK].timers.tick() >= 1
    await first.close()  # the desk restarts: timers are rows in the store
    second = await make_desk(policy_=quick)
    await asyncio.sleep(0.3)
    await second.app[DESK].timers.tick()
    await asyncio.sleep(0.3)
    await second.app[DESK].timers.tick()
    history = await (
        await second.get(
            f"/api/visitor/conversations/{cid}/messages",
            headers={"Authorization": f"Bearer {token}"},
        )
    ).json()
    bot = [m["text"] for m in history["messages"] if m["sender"] == "bot"]
    # Two prompts that are not word-for-word repeats, then the polite close.
    assert len(bot) == 4 and bot[1] == "您好，请问您还在线吗？" and bot[2] != bot[1]
    assert "长时间没有回复" in bot[-1] and history["mode"] == "closed"


async def test_hold_on_lets_the_visitor_take_longer(desk, policy):
    cid, token, _ = await open_chat(desk)
    before = await desk.app[DESK].store.get(cid)
    await say(desk, cid, token, "等一下，我找找订单号")
    after = await desk.app[DESK].store.get(cid)
    extra = (after.idle_deadline - before.idle_deadline).total_seconds()
    assert extra > policy.service.idle_after_s * (policy.service.hold_on_factor - 1) - 5


async def test_desk_restart_replays_missed_messages_in_order(make_desk):
    first = await make_desk()
    cid, token, _ = await open_chat(first)
    await say(first, cid, token, "你好")
    await first.close()
    second = await make_desk()
    await say(second, cid, token, "我要退货")
    async with second.ws_connect(
        f"/api/visitor/conversations/{cid}/ws?token={token}&after=1"
    ) as ws:
        events = await read_until(ws, lambda e: e["type"] == "replayed")
    seqs = [e["seq"] for e in events if e["type"] == "message"]
    assert seqs == list(range(2, seqs[-1] + 1)) and len(seqs) >= 4


async def test_rasa_down_the_visitor_is_told_and_queued(make_desk):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    client = await make_desk(rasa_url=dead)
    await login(client)
    cid, token, body = await open_chat(client)
    assert body["mode"] == "queued" and "暂时无法回复" in texts(body)[0]
    assert (await client.app[DESK].store.get(cid)).reason == "bot_failure"
    assert (await say(client, cid, token, "有人吗"))["mode"] == "queued"


async def test_tokens_guard_every_conversation_and_agent_endpoint(desk):
    cid, token, _ = await open_chat(desk)
    other, other_token, _ = await open_chat(desk)
    wrong = {"Authorization": f"Bearer {other_token}"}
    assert (
        await desk.post(
            f"/api/visitor/conversations/{cid}/messages", json={"text": "hi"}, headers=wrong
        )
    ).status == 404
    assert (
        await desk.get(f"/api/visitor/conversations/{cid}/messages", headers=wrong)
    ).status == 404
    assert (
        await desk.post(
            "/api/visitor/conversations/nope/messages", json={"text": "hi"}, headers=wrong
        )
    ).status == 404
    for method, path in [
        ("GET", "/api/agent/conversations"),
        ("GET", f"/api/agent/conversations/{cid}"),
        ("POST", f"/api/agent/conversations/{cid}/claim"),
        ("POST", f"/api/agent/conversations/{cid}/messages"),
        ("POST", f"/api/agent/conversations/{cid}/release"),
        ("POST", f"/api/agent/conversations/{cid}/close"),
        ("POST", "/api/agent/check"),
        ("GET", "/api/agent/phrases"),
        ("GET", "/api/agent/ws"),
    ]:
        for headers in (
            {},
            {"Authorization": "Bearer forged"},
            {"Authorization": f"Bearer {token}"},
        ):
            response = await desk.request(method, path, headers=headers, json={"text": "您好"})
            assert response.status == 401, (method, path)
    assert (
        await desk.post("/api/agent/login", json={"username": "demo", "password": "x"})
    ).status == 401


@pytest.mark.parametrize(
    "payload, status, code",
    [
        (b"not json", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_json"),
        (json.dumps({"text": 42}).encode(), 422, "invalid_text"),
        (json.dumps({"text": "   \n\t"}).encode(), 422, "empty_text"),
        (json.dumps({"text": "\u200b\u202e\u0007"}).encode(), 422, "empty_text"),
        (json.dumps({"text": "好" * 2001}).encode(), 413, "text_too_long"),
        (json.dumps({"text": "x" * 70000}).encode(), 413, "body_too_large"),
    ],
)
async def test_bad_input_gets_a_clear_json_error(desk, payload, status, code):
    cid, token, _ = await open_chat(desk)
    response = await desk.post(
        f"/api/visitor/conversations/{cid}/messages",
        data=payload,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status == status
    assert (await response.json())["error"] == code


async def test_odd_text_gets_a_polite_reply_and_is_stored_clean(desk):
    cid, token, _ = await open_chat(desk)
    for text in [
        "😀😀😀",
        "'; DROP TABLE messages; --",
        "<script>alert(1)</script>",
        "\ud800坏字符",
    ]:
        body = await say(desk, cid, token, text)
        assert body["replies"], text
    stored = [m.text for m in await desk.app[DESK].store.messages(cid) if m.sender == "visitor"]
    assert "<script>alert(1)</script>" in stored and "坏字符" in stored


async def test_messages_are_rate_limited_per_conversation(make_desk):
    client = await make_desk(rate_per_minute=3)
    cid, token, _ = await open_chat(client)
    for _ in range(3):
        await say(client, cid, token, "你好")
    limited = await say(client, cid, token, "你好", status=429)
    assert limited["error"] == "rate_limited"


async def test_websocket_from_another_site_is_refused(desk):
    cid, token, _ = await open_chat(desk)
    response = await desk.get(
        f"/api/visitor/conversations/{cid}/ws?token={token}",
        headers={
            "Origin": "https://evil.example",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    )
    assert response.status == 403


async def test_pages_have_a_content_security_policy(desk):
    for path in ("/", "/agent"):
        response = await desk.get(path)
        assert response.status == 200
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert (await (await desk.get("/healthz")).json()) == {"status": "ok"}
    missing = await desk.get("/nope")
    assert missing.status == 404 and (await missing.json())["error"] == "not_found"


def test_production_refuses_default_passwords():
    with pytest.raises(ConfigError, match="default or a short password"):
        DeskConfig.from_env(
            {
                "KEFU_ENV": "production",
                "KEFU_RASA_TOKEN": "t",
                "KEFU_DATABASE_URL": "postgresql://x/y",
            }
        )
    config = DeskConfig.from_env(
        {
            "KEFU_ENV": "production",
            "KEFU_RASA_TOKEN": "t",
            "KEFU_DATABASE_URL": "postgresql://x/y",
            "KEFU_AGENTS": "alice:a-long-secret",
        }
    )
    assert config.agents == (("alice", "a-long-secret"),)
    with pytest.raises(ConfigError):
        DeskConfig.from_env({"KEFU_AGENTS": "nopassword"})


# --- honest waiting ------------------------------------------------------------------


async def test_a_quick_answer_is_not_announced_as_a_wait(desk, policy):
    cid, token, _ = await open_chat(desk)
    replies = texts(await say(desk, cid, token, "帮我查一下订单 2023 1125 0012 3456"))
    wait = policy.phrases["wait_slow"].text
    assert wait not in replies and len(replies) == 1 and "运输中" in replies[0]


async def test_a_slow_answer_is_announced_then_thanked(make_desk, policy):
    impatient = dataclasses.replace(
        always_open(policy),
        service=dataclasses.replace(policy.service, announce_wait_after_s=0.001),
    )
    client = await make_desk(policy_=impatient)
    cid, token, _ = await open_chat(client)
    replies = texts(await say(client, cid, token, "帮我查一下订单2023112500123456"))
    assert replies[0] == policy.phrases["wait_slow"].text
    assert replies[1] == policy.phrases["thanks_wait"].text and "运输中" in replies[2]


async def test_a_waiting_visitor_always_hears_that_the_message_arrived(desk):
    await login(desk)
    cid, token, _ = await open_chat(desk)
    assert (await say(desk, cid, token, "转人工"))["mode"] == "queued"
    ack = texts(await say(desk, cid, token, "那现在就没人能帮我吗"))
    assert len(ack) == 1 and "您是下一位" in ack[0]
    # At most one acknowledgement every 30 s: the next message is stored, not answered twice.
    assert texts(await say(desk, cid, token, "好吧我等等")) == []
    urged = texts(await say(desk, cid, token, "还要多久啊"))
    assert urged and ("您是下一位" in urged[0] or "位" in urged[0])


async def test_call_back_mode_says_one_consistent_thing(make_desk, policy):
    closed = never_open(policy)
    client = await make_desk(policy_=closed)
    cid, token, _ = await open_chat(client)
    first = texts(await say(client, cid, token, "我要转人工"))
    assert not any("转接" in t for t in first), first  # nobody to transfer to now
    assert "手机号码" in first[-1]
    await say(client, cid, token, "13800138000")
    await say(client, cid, token, "明天上午")
    ack = texts(await say(client, cid, token, "好的，那我等你们电话"))
    assert len(ack) == 1 and "138****8000" in ack[0]
