"""`kefu run-scaled` for real: 2 Rasa, 2 action servers, 2 desks on PostgreSQL and Redis.

A visitor talks to desk A, an agent works on desk B, and a Rasa replica is killed in the
middle of the conversation. Nothing may be lost, duplicated or reordered, in the desk's
store or in Rasa's tracker."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import POSTGRES
from tests.processes import free_offset, port_open, printed, start

pytestmark = pytest.mark.slow
BASE_PORTS = (5005, 5006, 5055, 5056, 8080, 8081, 8082, 8090)
TOKEN = "scaled-test-token"


def _schema(sql: str) -> None:
    """Synchronous on purpose (psycopg2, Rasa's driver): this runs outside any event loop."""
    import psycopg2

    connection = psycopg2.connect(POSTGRES)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


@pytest.fixture(scope="module")
def scaled(model_path, tmp_path_factory):
    offset = free_offset(BASE_PORTS)  # chosen now, beside whatever else is running
    ports = [port + offset for port in BASE_PORTS]
    schema = f"kefu_scaled_{uuid.uuid4().hex[:10]}"
    _schema(f"CREATE SCHEMA {schema}")
    log = tmp_path_factory.mktemp("scaled") / "run-scaled.log"
    env = {
        "KEFU_RASA_TOKEN": TOKEN,
        "KEFU_PORT_OFFSET": str(offset),
        "KEFU_DATABASE_URL": f"{POSTGRES}?search_path={schema}",
        "POSTGRESQL_SCHEMA": schema,  # Rasa's tracker store
        "KEFU_RATE_PER_MINUTE": "100000",
    }
    kefu = [str(Path(sys.executable).parent / "kefu"), "run-scaled"]
    started = start("kefu run-scaled", kefu, log, printed("Press Ctrl-C"), env, timeout=400)
    pids = dict(
        re.findall(r"^\s+(\S+)\s+http://\S+.*\(pid (\d+)\)$", log.read_text(errors="replace"), re.M)
    )
    desk_a, desk_b = (f"http://127.0.0.1:{8080 + offset + i}" for i in (1, 2))
    yield {
        "pids": {k: int(v) for k, v in pids.items()},
        "log": log,
        "a": desk_a,
        "b": desk_b,
        "front": f"http://127.0.0.1:{8080 + offset}",
        "rasa_2": f"http://127.0.0.1:{5006 + offset}",
    }
    returncode = started.stop(signal.SIGINT, 90)
    _schema(f"DROP SCHEMA {schema} CASCADE")
    assert returncode == 0, log.read_text(errors="replace")[-3000:]
    assert not [p for p in ports if port_open(p)], "a service outlived Ctrl-C"


async def post(session, url, body, token=""):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.post(
        url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=30)
    ) as response:
        assert response.status in (200, 201), await response.text()
        return await response.json()


async def next_event(ws, match, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = await ws.receive(timeout=timeout)
        if message.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"websocket ended: {message}")
        event = json.loads(message.data)
        if match(event):
            return event
    raise AssertionError("no matching event")


async def test_visitor_on_a_agent_on_b_and_a_rasa_replica_killed(scaled):
    DESK_A, DESK_B, FRONT = scaled["a"], scaled["b"], scaled["front"]  # noqa: N806
    async with aiohttp.ClientSession() as s:
        opened = await post(s, f"{DESK_A}/api/visitor/conversations", {})
        cid, token = opened["conversation_id"], opened["token"]
        say = f"/api/visitor/conversations/{cid}/messages"
        agent = (
            await post(s, f"{DESK_B}/api/agent/login", {"username": "demo", "password": "demo"})
        )["token"]
        sent = ["你好", "我要转人工"]
        assert (await post(s, DESK_A + say, {"text": sent[0]}, token))["mode"] == "bot"
        escalated = await post(s, DESK_A + say, {"text": sent[1]}, token)
        assert escalated["mode"] in ("queued", "callback")

        async with (
            s.ws_connect(f"{DESK_A}{say.rsplit('/', 1)[0]}/ws?token={token}&after=0") as visitor,
            s.ws_connect(f"{DESK_B}/api/agent/ws?token={agent}") as console,
        ):
            await next_event(visitor, lambda e: e["type"] == "replayed")
            base = f"{DESK_B}/api/agent/conversations/{cid}"
            await post(s, base + "/claim", {}, agent)  # on B; the visitor is on A
            joined = await next_event(visitor, lambda e: e.get("sender") == "agent")
            assert "人工客服demo" in joined["text"]
            await post(s, base + "/messages", {"text": "您好，请问有什么可以帮您？"}, agent)
            reply = await next_event(visitor, lambda e: e.get("sender") == "agent")
            assert reply["text"] == "您好，请问有什么可以帮您？"
            sent.append("我想问一下退货的事")
            await post(s, DESK_A + say, {"text": sent[-1]}, token)
            seen = await next_event(console, lambda e: e.get("sender") == "visitor")
            assert seen["text"] == sent[-1] and seen["conversation_id"] == cid
            await post(s, base + "/release", {}, agent)
            await next_event(visitor, lambda e: e.get("type") == "mode" and e.get("mode") == "bot")

        os.kill(scaled["pids"]["rasa-1"], signal.SIGKILL)  # mid-conversation
        for text in [
            "帮我查一下订单2023112500123456",
            "谢谢",
            "我要退货",
            "JD20231118001",
            "尺码不合适",
            "好的谢谢",
        ]:
            sent.append(text)
            body = await post(s, FRONT + say, {"text": text}, token)
            assert body["replies"], text  # answered by the surviving replica

        history = (
            await (
                await s.get(f"{DESK_B}{say}", headers={"Authorization": f"Bearer {token}"})
            ).json()
        )["messages"]
        assert [m["seq"] for m in history] == list(range(1, len(history) + 1))
        assert [m["text"] for m in history if m["sender"] == "visitor"] == sent
        async with s.get(f"{scaled['rasa_2']}/conversations/{cid}/tracker?token={TOKEN}") as r:
            tracker = await r.json()
        heard = [  # the opening greeting is triggered, not said
            e["text"]
            for e in tracker["events"]
            if e["event"] == "user" and not e["text"].startswith("EXTERNAL:")
        ]
        assert heard == sent  # every message once, in order, also across the replicas
    deadline = time.monotonic() + 30
    while "rasa-1 stopped; restarted" not in scaled["log"].read_text(errors="replace"):
        assert time.monotonic() < deadline, "the supervisor did not restart the killed replica"
        await asyncio.sleep(0.5)
