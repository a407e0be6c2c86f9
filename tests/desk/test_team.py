"""A desk for a support team (issue 16): roles and accounts, statuses, automatic
assignment, transfer, the first-response timer, the supervisor's metrics and quality
review, and the console's lists, against the real Rasa of `kefu run`, on SQLite and on
PostgreSQL. Timers tick by hand here (`timers=False`), so every step is deterministic."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from kefu.desk.app import init_app
from kefu.desk.config import DeskConfig
from kefu.desk.keys import DESK
from tests.conftest import always_open
from tests.desk.test_desk import login, open_chat, say, texts

pytestmark = pytest.mark.slow
METRIC_KEYS = {
    "conversations",
    "handoffs",
    "handoff_rate",
    "handoffs_by_reason",
    "bot_resolution_rate",
    "first_response_s",
    "wait_s",
    "sla_breaches",
    "csat",
    "queue",
    "agents",
}
SUPERVISOR_ENDPOINTS = [
    ("POST", "/api/supervisor/agents"),
    ("GET", "/api/supervisor/agents"),
    ("GET", "/api/supervisor/metrics"),
    ("GET", "/api/supervisor/quality"),
    ("GET", "/api/supervisor/distributions"),
]


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path, pg_url):
    return f"sqlite:///{tmp_path / 'desk.db'}" if request.param == "sqlite" else pg_url


def team_policy(policy, **escalation):
    base = always_open(policy)
    return dataclasses.replace(base, escalation=dataclasses.replace(base.escalation, **escalation))


@pytest.fixture
def make_desk(aiohttp_client, stack, database_url, policy):
    async def make(**escalation):
        config = DeskConfig(
            rasa_url=stack.rasa,
            rasa_token=stack.token,
            action_server_url=stack.actions,
            database_url=database_url,
        )
        app = init_app(config, team_policy(policy, **escalation), timers=False)
        return await aiohttp_client(app)

    return make


@pytest.fixture
async def desk(make_desk):
    return await make_desk()


async def create(client, supervisor, username, password="long-enough-1", **extra):
    response = await client.post(
        "/api/supervisor/agents",
        headers=supervisor,
        json={"username": username, "password": password, "role": "agent", **extra},
    )
    return response.status, await response.json()


async def team(client, *names, capacity=None):
    """The demo supervisor creates agents; each logs in. Their auth headers."""
    boss = await login(client)
    extra = {"capacity": capacity} if capacity else {}
    headers = {}
    for name in names:
        status, _ = await create(client, boss, name, **extra)
        assert status == 201
        headers[name] = await login(client, name, "long-enough-1")
    return boss, headers


async def set_status(client, headers, status):
    response = await client.post("/api/agent/status", headers=headers, json={"status": status})
    assert response.status == 200, await response.text()
    return await response.json()


async def detail(client, headers, cid):
    response = await client.get(f"/api/agent/conversations/{cid}", headers=headers)
    assert response.status == 200
    return await response.json()


async def history(client, cid, token):
    response = await client.get(
        f"/api/visitor/conversations/{cid}/messages", headers={"Authorization": f"Bearer {token}"}
    )
    return await response.json()


async def test_a_supervisor_creates_agents_and_agents_get_403(desk):
    boss = await login(desk)
    me = await (await desk.get("/api/agent/me", headers=boss)).json()
    assert me["role"] == "supervisor"  # the embedded demo / demo
    status, body = await create(desk, boss, "alice", capacity=3)
    assert (status, body) == (201, {"username": "alice", "role": "agent", "capacity": 3})
    status, body = await create(desk, boss, "carol", role="supervisor")
    assert (status, body) == (201, {"username": "carol", "role": "supervisor", "capacity": 5})
    assert (await create(desk, boss, "alice"))[0] == 409
    assert (await create(desk, boss, "demo"))[0] == 409  # a configured account
    assert (await create(desk, boss, "bob", password="short"))[0] == 422
    assert (await create(desk, boss, "bob", role="admin"))[0] == 422
    assert (await create(desk, boss, "bob", capacity=0))[0] == 422
    assert (await create(desk, boss, "b o b"))[0] == 422
    alice = await login(desk, "alice", "long-enough-1")
    for method, path in SUPERVISOR_ENDPOINTS:
        response = await desk.request(method, path, headers=alice, json={})
        assert response.status == 403, (method, path)
        assert (await response.json())["error"] == "forbidden"
        for headers in ({}, {"Authorization": "Bearer forged"}):
            assert (await desk.request(method, path, headers=headers, json={})).status == 401
    carol = await login(desk, "carol", "long-enough-1")
    assert (await desk.get("/api/supervisor/agents", headers=carol)).status == 200
    # Stored as scrypt hashes in the desk's store, beside the configured accounts.
    stored = await desk.app[DESK].store.agent("alice")
    assert (
        stored.password_hash.startswith("scrypt$") and "long-enough-1" not in stored.password_hash
    )
    roster = await (await desk.get("/api/supervisor/agents", headers=boss)).json()
    assert {r["username"] for r in roster} == {"demo", "alice", "carol"}
    assert all(set(r) == {"username", "role", "status", "active", "capacity"} for r in roster)


async def test_statuses_and_offline_when_the_console_disappears(make_desk):
    desk = await make_desk(agent_online_seconds=1.0)
    boss, agents = await team(desk, "alice")
    assert await set_status(desk, agents["alice"], "online") == {
        "username": "alice",
        "status": "online",
    }
    bad = await desk.post("/api/agent/status", headers=agents["alice"], json={"status": "busy"})
    assert bad.status == 422
    roster = {
        r["username"]: r
        for r in await (await desk.get("/api/supervisor/agents", headers=boss)).json()
    }
    assert roster["alice"]["status"] == "online" and roster["alice"]["active"] == 0
    await set_status(desk, agents["alice"], "away")
    await asyncio.sleep(1.3)  # alice's console is gone: nothing from it for over a second
    roster = {
        r["username"]: r
        for r in await (await desk.get("/api/supervisor/agents", headers=boss)).json()
    }
    assert roster["alice"]["status"] == "offline" and roster["demo"]["status"] != "offline"


async def test_a_chat_is_assigned_to_an_online_agent_and_the_timer_runs_until_the_reply(
    desk, policy
):
    boss, agents = await team(desk, "alice")
    await set_status(desk, agents["alice"], "online")
    cid, token, _ = await open_chat(desk)
    body = await say(desk, cid, token, "我要转人工")
    assert body["mode"] == "agent" and body["queue"] is None
    joined = texts(body)[-1]
    assert "人工客服alice" in joined and "我已经了解" not in joined
    item = await detail(desk, agents["alice"], cid)
    assert (item["status"], item["agent"]) == ("agent", "alice")
    assert item["first_response_due"] and item["first_response_s"] is None
    assert item["brief"][0]["label"] == "转人工原因"
    mine = await (
        await desk.get("/api/agent/conversations?view=mine", headers=agents["alice"])
    ).json()
    assert [c["conversation_id"] for c in mine] == [cid]
    sent = await desk.post(
        f"/api/agent/conversations/{cid}/messages",
        headers=agents["alice"],
        json={"text": "您好，我来为您处理，请问有什么可以帮您？"},
    )
    assert sent.status == 200
    item = await detail(desk, agents["alice"], cid)
    assert item["first_response_due"] is None and 0 <= item["first_response_s"] < 60
    roster = {
        r["username"]: r
        for r in await (await desk.get("/api/supervisor/agents", headers=boss)).json()
    }
    assert roster["alice"]["active"] == 1


async def test_fewest_active_chats_first_and_nobody_free_means_the_queue(desk):
    boss, agents = await team(desk, "alice", "bob", capacity=1)
    await set_status(desk, agents["alice"], "online")
    await set_status(desk, agents["bob"], "online")
    first, t1, _ = await open_chat(desk)
    second, t2, _ = await open_chat(desk)
    third, t3, _ = await open_chat(desk)
    assert (await say(desk, first, t1, "转人工"))["mode"] == "agent"
    assert (await say(desk, second, t2, "转人工"))["mode"] == "agent"
    holders = {(await detail(desk, boss, c))["agent"] for c in (first, second)}
    assert holders == {"alice", "bob"}  # one each, not both to one
    waiting = await say(desk, third, t3, "转人工")  # both are full: it waits
    assert waiting["mode"] == "queued" and waiting["queue"]["ahead"] == 0
    assert (await detail(desk, boss, third))["first_response_due"]
    holder = (await detail(desk, boss, first))["agent"]
    closed = await desk.post(f"/api/agent/conversations/{first}/close", headers=agents[holder])
    assert closed.status == 200
    item = await detail(desk, boss, third)  # the freed place takes the queue at once
    assert (item["status"], item["agent"]) == ("agent", holder)


async def test_an_agent_who_comes_online_gets_the_waiting_chat(desk):
    _, agents = await team(desk, "alice")  # logged in: present, not taking chats yet
    cid, token, _ = await open_chat(desk)
    assert (await say(desk, cid, token, "转人工"))["mode"] == "queued"
    await set_status(desk, agents["alice"], "online")
    said = [m["text"] for m in (await history(desk, cid, token))["messages"]]
    assert said[-1].startswith("您好，我是人工客服alice")
    assert (await history(desk, cid, token))["mode"] == "agent"


async def test_manual_assignment_leaves_the_queue_to_claims(make_desk):
    desk = await make_desk(assignment="manual")
    _, agents = await team(desk, "alice")
    await set_status(desk, agents["alice"], "online")
    cid, token, _ = await open_chat(desk)
    assert (await say(desk, cid, token, "转人工"))["mode"] == "queued"
    await desk.app[DESK].tick()
    assert (await desk.app[DESK].store.get(cid)).status == "queued"
    claimed = await desk.post(f"/api/agent/conversations/{cid}/claim", headers=agents["alice"])
    assert claimed.status == 200 and (await claimed.json())["agent"] == "alice"


async def test_two_claims_at_once_one_200_one_409(desk):
    _, agents = await team(desk, "alice", "bob")  # present (away): nothing is assigned
    for _ in range(3):
        cid, token, _ = await open_chat(desk)
        assert (await say(desk, cid, token, "转人工"))["mode"] == "queued"
        responses = await asyncio.gather(
            *(
                desk.post(f"/api/agent/conversations/{cid}/claim", headers=agents[name])
                for name in ("alice", "bob")
            )
        )
        assert sorted(r.status for r in responses) == [200, 409]
        joined = [
            m for m in (await history(desk, cid, token))["messages"] if m["sender"] == "agent"
        ]
        assert len(joined) == 1  # the visitor heard one agent join, not two


async def test_transfer_needs_an_online_agent_with_room_and_carries_the_note(desk):
    boss, agents = await team(desk, "alice", "bob")
    await set_status(desk, agents["alice"], "online")
    cid, token, _ = await open_chat(desk)
    assert (await say(desk, cid, token, "转人工"))["mode"] == "agent"
    path = f"/api/agent/conversations/{cid}/transfer"
    note = "访客要改地址，已核对订单"
    offline = await desk.post(path, headers=agents["alice"], json={"to": "bob", "note": note})
    assert offline.status == 409  # bob is not online
    assert (await desk.post(path, headers=agents["alice"], json={"to": "nobody"})).status == 409
    assert (await desk.post(path, headers=agents["alice"], json={})).status == 422
    await set_status(desk, agents["bob"], "online")
    taken = await desk.post(path, headers=agents["bob"], json={"to": "bob"})
    assert taken.status == 409  # bob does not hold it and is not a supervisor
    async with desk.ws_connect(f"/api/agent/ws?token={agents['bob']['Authorization'][7:]}") as ws:
        moved = await desk.post(path, headers=agents["alice"], json={"to": "bob", "note": note})
        assert moved.status == 200
        body = await moved.json()
        assert body["agent"] == "bob" and body["summary"]["transfer"]["note"] == note
        while True:
            event = await ws.receive_json(timeout=10)
            if event.get("type") == "transfer":
                break
        assert (event["to"], event["from"], event["note"]) == ("bob", "alice", note)
    item = await detail(desk, agents["bob"], cid)
    assert any(line["text"].endswith(note) for line in item["brief"] if line["label"] == "转接")
    said = [m["text"] for m in (await history(desk, cid, token))["messages"]]
    assert said[-1].startswith("您好，我是人工客服bob")
    await set_status(desk, agents["alice"], "away")  # the next chat cannot go to alice
    full = await desk.post(
        "/api/supervisor/agents",
        headers=boss,
        json={"username": "dan", "password": "long-enough-1", "role": "agent", "capacity": 1},
    )
    assert full.status == 201
    dan = await login(desk, "dan", "long-enough-1")
    await set_status(desk, dan, "online")
    other, other_token, _ = await open_chat(desk)
    await say(desk, other, other_token, "转人工")  # dan has none: it goes to dan
    assert (await detail(desk, boss, other))["agent"] == "dan"
    full_up = await desk.post(path, headers=agents["bob"], json={"to": "dan"})
    assert full_up.status == 409  # dan is full


async def test_first_response_breach_says_one_holding_phrase_and_is_counted(make_desk, policy):
    desk = await make_desk(first_response_s=0.3)
    boss, agents = await team(desk, "alice")
    await set_status(desk, agents["alice"], "online")
    cid, token, _ = await open_chat(desk)
    assert (await say(desk, cid, token, "转人工"))["mode"] == "agent"
    await asyncio.sleep(0.5)
    assert await desk.app[DESK].first_response.tick() == 1
    assert await desk.app[DESK].first_response.tick() == 0  # once
    hold = policy.phrases["first_response_hold"].text
    said = [m["text"] for m in (await history(desk, cid, token))["messages"]]
    assert said.count(hold) == 1
    metrics = await (await desk.get("/api/supervisor/metrics", headers=boss)).json()
    assert metrics["sla_breaches"] == 1


async def test_an_unanswered_assignment_goes_to_the_next_agent(make_desk):
    desk = await make_desk(reassign_after_s=0.3)
    _, agents = await team(desk, "alice", "bob")
    await set_status(desk, agents["alice"], "online")
    cid, token, _ = await open_chat(desk)
    await say(desk, cid, token, "转人工")
    assert (await desk.app[DESK].store.get(cid)).agent == "alice"
    await set_status(desk, agents["bob"], "online")
    await asyncio.sleep(0.5)
    await desk.app[DESK].tick()
    conversation = await desk.app[DESK].store.get(cid)
    assert (conversation.status, conversation.agent) == ("agent", "bob")
    said = [m["text"] for m in (await history(desk, cid, token))["messages"]]
    assert said[-1].startswith("您好，我是人工客服bob")


async def test_metrics_have_every_key_and_count_hand_overs_by_reason(desk):
    boss, agents = await team(desk, "alice")
    for line in ("转人工", "我要人工客服", "充电器冒烟了，好危险"):
        cid, token, _ = await open_chat(desk)
        assert (await say(desk, cid, token, line))["mode"] == "queued"
    cid, token, _ = await open_chat(desk)
    await say(desk, cid, token, "帮我查一下订单2023112500123456")  # the bot does it alone
    await set_status(desk, agents["alice"], "online")  # takes the queue (capacity 5)
    rated = await desk.post(
        f"/api/visitor/conversations/{cid}/satisfaction",
        json={"score": 4},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert rated.status == 200
    metrics = await (await desk.get("/api/supervisor/metrics", headers=boss)).json()
    assert set(metrics) == METRIC_KEYS
    assert metrics["handoffs"] == 3
    assert metrics["handoffs_by_reason"] == {"customer_request": 2, "safety": 1}
    assert metrics["conversations"] == 4 and metrics["handoff_rate"] == 0.75
    assert metrics["bot_resolution_rate"] == 0.25
    assert set(metrics["first_response_s"]) == {"p50", "p90"}
    assert set(metrics["wait_s"]) == {"p50", "p90"} and metrics["wait_s"]["p50"] >= 0
    assert metrics["csat"] == {"avg": 4.0, "count": 1}
    assert metrics["queue"] == {"waiting": 0}
    assert metrics["agents"]["online"] == 1 and set(metrics["agents"]) == {
        "online",
        "away",
        "offline",
    }
    later = await desk.get("/api/supervisor/metrics?since=2999-01-01T00:00:00Z", headers=boss)
    assert (await later.json())["conversations"] == 0
    bad = await desk.get("/api/supervisor/metrics?since=yesterday", headers=boss)
    assert bad.status == 422
    charts = await (await desk.get("/api/supervisor/distributions", headers=boss)).json()
    assert sum(b["n"] for b in charts["wait_s"]) == 3
    assert [r["n"] for r in charts["csat"]] == [0, 0, 0, 1, 0]


async def test_quality_review_scores_a_handled_chat_with_its_findings(desk):
    boss, agents = await team(desk, "alice")
    await set_status(desk, agents["alice"], "online")
    cid, token, _ = await open_chat(desk)
    await say(desk, cid, token, "转人工")
    path = f"/api/agent/conversations/{cid}"
    blocked = await desk.post(
        path + "/messages", headers=agents["alice"], json={"text": "这个我不知道"}
    )
    assert blocked.status == 422
    sent = await desk.post(
        path + "/messages", headers=agents["alice"], json={"text": "您好，我马上为您查询。"}
    )
    assert sent.status == 200
    assert (await desk.post(path + "/close", headers=agents["alice"])).status == 200
    await desk.post(
        f"/api/visitor/conversations/{cid}/satisfaction",
        json={"score": 2},
        headers={"Authorization": f"Bearer {token}"},
    )
    review = await (await desk.get("/api/supervisor/quality", headers=boss)).json()
    [item] = [r for r in review if r["conversation_id"] == cid]
    assert set(item) == {"conversation_id", "agent", "score", "findings"}
    assert item["agent"] == "alice" and item["score"] < 100
    kinds = {f["kind"] for f in item["findings"]}
    assert {"blocked_reply", "low_rating"} <= kinds
    [block] = [f for f in item["findings"] if f["kind"] == "blocked_reply"]
    assert "这个我不知道" in block["detail"] and "您好，我马上为您查询" in block["detail"]
    assert all(set(f) == {"kind", "detail", "at"} and f["at"] for f in item["findings"])


async def test_the_console_lists_counts_and_search(desk):
    boss, agents = await team(desk, "alice")
    queued, t1, _ = await open_chat(desk)
    await say(desk, queued, t1, "帮我查一下订单2023112500123456")
    await say(desk, queued, t1, "转人工")
    await set_status(desk, agents["alice"], "online")
    assert (await desk.app[DESK].store.get(queued)).agent == "alice"
    waiting, t2, _ = await open_chat(desk)
    await set_status(desk, agents["alice"], "away")
    await say(desk, waiting, t2, "转人工")
    counts = await (await desk.get("/api/agent/counts", headers=agents["alice"])).json()
    assert counts["queue"] == 1 and counts["mine"] == 1 and counts["callback"] == 0
    for view, expected in (("queue", [waiting]), ("mine", [queued]), ("closed", [])):
        listing = await (
            await desk.get(f"/api/agent/conversations?view={view}", headers=agents["alice"])
        ).json()
        assert [c["conversation_id"] for c in listing] == expected, view
    bad = await desk.get("/api/agent/conversations?view=all", headers=agents["alice"])
    assert bad.status == 422
    for q in ("2023112500123456", queued[:10]):
        found = await (await desk.get(f"/api/agent/conversations?q={q}", headers=boss)).json()
        assert queued in [c["conversation_id"] for c in found], q
    quick = await (await desk.get("/api/agent/phrases", headers=boss)).json()
    assert quick and not any("智能客服" in p["text"] for p in quick)  # not the bot's greeting


async def test_logout_signs_the_agent_off(desk):
    boss, agents = await team(desk, "alice")
    await set_status(desk, agents["alice"], "online")
    assert (await desk.post("/api/agent/logout", headers=agents["alice"])).status == 200
    assert (await desk.get("/api/agent/me", headers=agents["alice"])).status == 401
    roster = {
        r["username"]: r
        for r in await (await desk.get("/api/supervisor/agents", headers=boss)).json()
    }
    assert roster["alice"]["status"] == "offline"
