"""Faults injected for real: the action server is a closed port behind a real Rasa."""

from __future__ import annotations

import signal
import sys
import time

import pytest

from kefu.desk.app import init_app
from kefu.desk.config import DeskConfig
from kefu.desk.keys import DESK
from tests.conftest import ROOT, always_open
from tests.processes import answers, free_port, start

pytestmark = pytest.mark.slow
TOKEN = "fault-test-token"


@pytest.fixture(scope="module")
def rasa_without_actions(model_path, tmp_path_factory):
    """A Rasa of its own (kefu's launcher), beside the shared stack, on a free port."""
    work = tmp_path_factory.mktemp("faults")
    endpoints = work / "endpoints.yml"
    actions = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    endpoints.write_text(
        f'action_endpoint:\n  url: "{actions}/webhook"\n  enable_selective_domain: true\n'
        "nlg:\n  type: kefu.rasa.nlg.GuardedNaturalLanguageGenerator\n",
        encoding="utf-8",
    )
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "kefu.rasa",
        "run",
        "--model",
        str(model_path),
        "--interface",
        "127.0.0.1",
        "--port",
        str(port),
        "--enable-api",
        "--auth-token",
        TOKEN,
        "--credentials",
        str(ROOT / "credentials.yml"),
        "--endpoints",
        str(endpoints),
    ]
    url = f"http://127.0.0.1:{port}"
    rasa = start("Rasa", argv, work / "rasa.log", answers(f"{url}/"), timeout=240)
    yield url, actions
    rasa.stop(signal.SIGTERM, 30)


@pytest.fixture
async def desk(aiohttp_client, rasa_without_actions, tmp_path, policy):
    rasa, actions = rasa_without_actions
    config = DeskConfig(
        rasa_url=rasa,
        rasa_token=TOKEN,
        action_server_url=actions,
        database_url=f"sqlite:///{tmp_path / 'desk.db'}",
    )
    return await aiohttp_client(init_app(config, always_open(policy), timers=False))


@pytest.mark.parametrize("text", ["帮我查一下订单2023112500123456", "我要退货", "收到的东西是坏的"])
async def test_action_server_down_a_polite_reply_in_time_and_a_hand_over(desk, text):
    login = await desk.post("/api/agent/login", json={"username": "demo", "password": "demo"})
    assert login.status == 200
    opened = await (await desk.post("/api/visitor/conversations", json={})).json()
    assert opened["replies"], "the greeting is a template: it needs no action server"
    started = time.monotonic()
    response = await desk.post(
        f"/api/visitor/conversations/{opened['conversation_id']}/messages",
        json={"text": text},
        headers={"Authorization": f"Bearer {opened['token']}"},
    )
    elapsed = time.monotonic() - started
    body = await response.json()
    assert response.status == 200 and elapsed < 3.0, (elapsed, body)
    assert body["replies"] and body["mode"] == "queued"
    conversation = await desk.app[DESK].store.get(opened["conversation_id"])
    assert conversation.reason == "bot_failure"
