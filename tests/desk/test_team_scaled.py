"""Two desk processes on one PostgreSQL and one Redis (as `make run-scaled` runs them),
beside the real Rasa of `kefu run`: claims that race across the desks, and automatic
assignment from both at once, never give a conversation twice nor an agent more than
their capacity."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import POSTGRES
from tests.processes import ROOT, answers, free_port, start
from tests.stack.test_scaled import _schema

pytestmark = pytest.mark.slow


def open_hours_policy(work: Path) -> Path:
    """A copy of policy/ with the agents' hours around the clock (tests run at any hour)."""
    policy = work / "policy"
    shutil.copytree(ROOT / "policy", policy)
    escalation = policy / "escalation.yml"
    text = escalation.read_text(encoding="utf-8")
    text = re.sub(r'open: "\d\d:\d\d"', 'open: "00:00"', text)
    text = re.sub(r'close: "\d\d:\d\d"', 'close: "23:59"', text)
    escalation.write_text(text, encoding="utf-8")
    return policy


def start_desk(name: str, work: Path, env: dict) -> tuple:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "kefu.desk", "--host", "127.0.0.1", "--port", str(port)]
    log = work / f"desk-{name}.log"
    return url, start(f"desk {name}", argv, log, answers(f"{url}/healthz"), env, 120)


@pytest.fixture(scope="module")
def two_desks(stack, tmp_path_factory):
    work = tmp_path_factory.mktemp("two-desks")
    policy = open_hours_policy(work)
    schema = f"kefu_desks_{uuid.uuid4().hex[:10]}"
    _schema(f"CREATE SCHEMA {schema}")
    env = {
        "KEFU_DATABASE_URL": f"{POSTGRES}?search_path={schema}",
        "KEFU_REDIS_URL": "redis://127.0.0.1:6379/0",
        "KEFU_RASA_URL": stack.rasa,
        "KEFU_RASA_TOKEN": stack.token,
        "KEFU_ACTION_SERVER_URL": stack.actions,
        "KEFU_POLICY_DIR": str(policy),
        "KEFU_DESK_TICK_S": "0.5",
        "KEFU_RATE_PER_MINUTE": "100000",
    }
    desks = []
    try:
        for name in ("a", "b"):
            desks.append(start_desk(name, work, env))
        yield [url for url, _ in desks]
    finally:
        for _, process in desks:
            assert process.stop(signal.SIGINT, 30) == 0, process.output()[-2000:]
        _schema(f"DROP SCHEMA {schema} CASCADE")


async def call(session, method, url, body=None, token="", expect=(200, 201)):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.request(
        method, url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=60)
    ) as response:
        data = await response.json()
        if expect is not None:
            assert response.status in expect, (url, response.status, data)
        return response.status, data


async def login(session, desk, username, password):
    _, body = await call(
        session, "POST", f"{desk}/api/agent/login", {"username": username, "password": password}
    )
    return body["token"]


async def escalate(session, desk):
    _, opened = await call(session, "POST", f"{desk}/api/visitor/conversations", {})
    cid, token = opened["conversation_id"], opened["token"]
    _, body = await call(
        session,
        "POST",
        f"{desk}/api/visitor/conversations/{cid}/messages",
        {"text": "转人工"},
        token,
    )
    return cid, token, body


async def test_two_claims_on_two_desks_one_200_one_409(two_desks):
    desk_a, desk_b = two_desks
    async with aiohttp.ClientSession() as s:
        boss = await login(s, desk_a, "demo", "demo")
        for name in ("racer1", "racer2"):
            await call(
                s,
                "POST",
                f"{desk_a}/api/supervisor/agents",
                {"username": name, "password": "long-enough-1", "role": "agent"},
                boss,
            )
        one = await login(s, desk_a, "racer1", "long-enough-1")  # present, not online:
        two = await login(s, desk_b, "racer2", "long-enough-1")  # nothing is assigned
        for _ in range(5):
            cid, token, body = await escalate(s, desk_a)
            assert body["mode"] == "queued"
            results = await asyncio.gather(
                call(s, "POST", f"{desk_a}/api/agent/conversations/{cid}/claim", {}, one, None),
                call(s, "POST", f"{desk_b}/api/agent/conversations/{cid}/claim", {}, two, None),
            )
            assert sorted(status for status, _ in results) == [200, 409]
            _, history = await call(
                s, "GET", f"{desk_b}/api/visitor/conversations/{cid}/messages", None, token
            )
            assert [m["sender"] for m in history["messages"]].count("agent") == 1
        await call(s, "POST", f"{desk_a}/api/agent/logout", {}, one)
        await call(s, "POST", f"{desk_b}/api/agent/logout", {}, two)


async def test_assignment_from_both_desks_respects_capacity(two_desks):
    desk_a, desk_b = two_desks
    async with aiohttp.ClientSession() as s:
        boss = await login(s, desk_b, "demo", "demo")
        await call(s, "POST", f"{desk_b}/api/agent/status", {"status": "away"}, boss)
        tokens = {}
        for name, desk in (("alice", desk_a), ("bob", desk_b)):
            await call(
                s,
                "POST",
                f"{desk}/api/supervisor/agents",
                {"username": name, "password": "long-enough-1", "role": "agent", "capacity": 2},
                boss,
            )
            tokens[name] = await login(s, desk, name, "long-enough-1")
        async with s.ws_connect(f"{desk_b}/api/agent/ws?token={tokens['bob']}") as console:
            for name, desk in (("alice", desk_a), ("bob", desk_b)):
                await call(
                    s, "POST", f"{desk}/api/agent/status", {"status": "online"}, tokens[name]
                )
            chats = await asyncio.gather(*(escalate(s, d) for d in (desk_a, desk_b) * 3))
            _, roster = await call(s, "GET", f"{desk_a}/api/supervisor/agents", None, boss)
            active = {r["username"]: r["active"] for r in roster}
            assert active["alice"] == 2 and active["bob"] == 2, active
            modes = sorted(body["mode"] for _, _, body in chats)
            assert modes == ["agent"] * 4 + ["queued"] * 2, modes
            for cid, token, _ in chats:
                _, history = await call(
                    s, "GET", f"{desk_a}/api/visitor/conversations/{cid}/messages", None, token
                )
                joined = [m for m in history["messages"] if m["sender"] == "agent"]
                assert len(joined) == (1 if history["mode"] == "agent" else 0)
            # Assignments made on desk A reach a console on desk B through Redis.
            seen = set()
            while len(seen) < 4:
                event = await console.receive_json(timeout=15)
                if event.get("type") == "mode" and event.get("mode") == "agent":
                    seen.add(event["conversation_id"])
            assert seen == {cid for cid, _, body in chats if body["mode"] == "agent"}
            # A freed place is filled from the queue by whichever desk ticks first.
            mine = next(cid for cid, _, body in chats if body["mode"] == "agent")
            _, taken = await call(s, "GET", f"{desk_a}/api/agent/conversations/{mine}", None, boss)
            await call(
                s,
                "POST",
                f"{desk_a}/api/agent/conversations/{mine}/close",
                {},
                tokens[taken["agent"]],
            )
            _, queued = await call(
                s, "GET", f"{desk_b}/api/agent/conversations?view=queue", None, boss
            )
            assert len(queued) == 1
