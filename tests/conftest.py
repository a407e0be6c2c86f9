"""Shared fixtures, in the style of rasa-demo: real Domain, Tracker and dispatcher."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import time as clock
from pathlib import Path
from typing import Any, Callable, Dict, List

import asyncpg
import pytest
from rasa.shared.core.domain import Domain
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from kefu.policy import load_policy
from kefu.policy.loader import Policy, WorkingHours

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "kefu.tar.gz"


@pytest.fixture(scope="session")
def domain() -> Domain:
    return Domain.load(str(ROOT / "domain.yml"))


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(ROOT / "policy")


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    return CollectingDispatcher()


@pytest.fixture
def make_tracker() -> Callable[..., Tracker]:
    def make(
        slots: Dict[str, Any] | None = None,
        events: List[Dict[str, Any]] | None = None,
        text: str = "",
        intent: str = "greet",
        entities: List[Dict[str, Any]] | None = None,
    ) -> Tracker:
        return Tracker.from_dict(
            {
                "sender_id": "test-visitor",
                "slots": slots or {},
                "latest_message": {
                    "text": text,
                    "intent": {"name": intent, "confidence": 1.0},
                    "entities": entities or [],
                },
                "events": events or [],
                "paused": False,
                "followup_action": None,
                "active_loop": {},
                "latest_action_name": "action_listen",
            }
        )

    return make


@pytest.fixture(scope="session")
def model_path() -> Path:
    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing: `make test` trains it first (make train).")
    return MODEL


# --- the real stack, started once per session ------------------------------------

STACK_PORTS = (5005, 5055, 8080, 8090)
STACK_TOKEN = "kefu-test-token"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclasses.dataclass
class Stack:
    process: subprocess.Popen
    log: Path
    rasa: str = "http://127.0.0.1:5005"
    desk: str = "http://127.0.0.1:8080"
    token: str = STACK_TOKEN

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="session")
def stack(model_path, tmp_path_factory) -> Any:
    """`kefu run` (Rasa, actions, demo orders, desk) on loopback; Ctrl-C at the end."""
    busy = [p for p in STACK_PORTS if port_open(p)]
    if busy:
        pytest.fail(f"ports {busy} are taken: stop the running stack before the tests")
    work = tmp_path_factory.mktemp("stack")
    log = work / "kefu-run.log"
    env = {
        **os.environ,
        "KEFU_RASA_TOKEN": STACK_TOKEN,
        "KEFU_DATABASE_URL": f"sqlite:///{work / 'kefu.db'}",
        # The browser tests send 100 messages in one conversation; test_desk tests the limit.
        "KEFU_RATE_PER_MINUTE": "100000",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "kefu"), "run"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    running = Stack(process, log)
    deadline = time.monotonic() + 300
    while "Press Ctrl-C to stop." not in running.output():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("kefu run did not start:\n" + running.output()[-3000:])
        time.sleep(0.5)
    yield running
    process.send_signal(signal.SIGINT)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 0, running.output()[-3000:]
    assert "kefu: stopped." in running.output()
    assert not [p for p in STACK_PORTS if port_open(p)], "a service outlived Ctrl-C"


def always_open(policy: Policy) -> Policy:
    """The policy with agents' hours around the clock (the tests run at any hour)."""
    hours = WorkingHours("UTC", clock(0, 0), clock(23, 59, 59, 999999), (1, 2, 3, 4, 5, 6, 7))
    escalation = dataclasses.replace(policy.escalation, hours=hours)
    return dataclasses.replace(policy, escalation=escalation)


def never_open(policy: Policy) -> Policy:
    """The policy with no agents' hours at all: every hand-over takes a call-back."""
    hours = dataclasses.replace(always_open(policy).escalation.hours, weekdays=())
    escalation = dataclasses.replace(policy.escalation, hours=hours)
    return dataclasses.replace(policy, escalation=escalation)


@pytest.fixture
async def pg_url():
    """A PostgreSQL URL on its own fresh schema, dropped afterwards."""
    schema = f"kefu_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES)
    await admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{POSTGRES}?search_path={schema}"
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()
