"""`kefu run` (what `make run` starts): the real stack on loopback, then Ctrl-C."""

from __future__ import annotations

import uuid
from pathlib import Path

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[2]


async def say(session: aiohttp.ClientSession, rasa: str, sender: str, text: str) -> list[str]:
    webhook = f"{rasa}/webhooks/rest/webhook"
    async with session.post(
        webhook, json={"sender": sender, "message": text}, timeout=aiohttp.ClientTimeout(total=30)
    ) as response:
        assert response.status == 200
        return [m.get("text", "") for m in await response.json()]


@pytest.mark.slow
async def test_run_serves_the_assistant_on_loopback(stack, policy):
    assert all("127.0.0.1" in line for line in stack.output().splitlines() if "http://" in line)
    assert "desk" in stack.output() and "demo / demo" in stack.output()
    visitor, greeter = f"stack-{uuid.uuid4().hex}", f"stack-{uuid.uuid4().hex}"
    RASA, TOKEN = stack.rasa, stack.token  # noqa: N806 (read as constants below)
    async with aiohttp.ClientSession() as session:
        # What the desk does when a visitor opens the chat window.
        trigger = f"{RASA}/conversations/{visitor}/trigger_intent?output_channel=rest"
        body = {"name": "greet"}
        async with session.post(trigger, json=body) as response:
            assert response.status == 401  # Rasa's HTTP API wants the token
        async with session.post(f"{trigger}&token={TOKEN}", json=body) as response:
            assert response.status == 200
            opening = [m["text"] for m in (await response.json())["messages"]]
        assert len(opening) == 1
        assert policy.brand.name in opening[0] and opening[0].endswith("请问有什么可以帮您？")

        # The order flow across Rasa, the action server and the demo backend.
        # A quick lookup answers at once: no wait announced before an instant answer.
        replies = await say(session, RASA, visitor, "帮我查一下订单2023-1125-0012-3456")
        assert len(replies) == 1 and "2023112500123456" in replies[0]
        assert "运输中" in replies[0] and "顺丰速运" in replies[0] and "预计" in replies[0]

        # A visitor who greets first hears one greeting, not two.
        assert len(await say(session, RASA, greeter, "你好")) == 1

        reply = await say(session, RASA, visitor, "我要轉人工")
        assert reply and "轉接" in reply[0]  # traditional in, traditional out

        async with session.get(f"{stack.desk}/healthz") as response:
            assert response.status == 200
