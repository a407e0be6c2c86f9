"""`kefu run` (what `make run` starts): the real stack on loopback, then Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PORTS = (5005, 5055, 8090)
RASA = "http://127.0.0.1:5005"
WEBHOOK = f"{RASA}/webhooks/rest/webhook"
TOKEN = "stack-test-token"


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


async def say(session: aiohttp.ClientSession, sender: str, text: str) -> list[str]:
    async with session.post(WEBHOOK, json={"sender": sender, "message": text},
                            timeout=aiohttp.ClientTimeout(total=30)) as response:
        assert response.status == 200
        return [m.get("text", "") for m in await response.json()]


@pytest.mark.slow
async def test_run_serves_the_assistant_and_stops_on_ctrl_c(model_path, policy):
    busy = [p for p in PORTS if port_open(p)]
    assert not busy, f"ports {busy} are taken: stop the running stack before the tests"
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "kefu"), "run", cwd=ROOT,
        env={**os.environ, "KEFU_RASA_TOKEN": TOKEN},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output: list[str] = []
    try:
        async def wait_ready() -> None:
            assert process.stdout is not None
            async for raw in process.stdout:
                line = raw.decode("utf-8", "replace")
                output.append(line)
                if "Press Ctrl-C to stop." in line:
                    return
            raise AssertionError("kefu run exited:\n" + "".join(output[-30:]))

        await asyncio.wait_for(wait_ready(), timeout=240)
        assert all("127.0.0.1" in line for line in output if "http://" in line)

        visitor, greeter = f"stack-{uuid.uuid4().hex}", f"stack-{uuid.uuid4().hex}"
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
            replies = await say(session, visitor, "帮我查一下订单2023112500123456")
            assert replies[0].startswith("请稍等，我正在为您查询订单2023112500123456")
            assert replies[1] == "感谢您的耐心等待。"
            assert "运输中" in replies[2] and "顺丰速运" in replies[2]

            # A visitor who greets first hears one greeting, not two.
            assert len(await say(session, greeter, "你好")) == 1

            reply = await say(session, visitor, "我要轉人工")
            assert reply and "轉接" in reply[0]  # traditional in, traditional out
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        rest = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, "".join(output) + rest[0].decode()
    assert "kefu: stopped." in rest[0].decode()
    assert not [p for p in PORTS if port_open(p)], "a service outlived Ctrl-C"
