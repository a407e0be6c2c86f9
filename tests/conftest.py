"""Shared fixtures, in the style of rasa-demo: real Domain, Tracker and dispatcher."""

from __future__ import annotations

import dataclasses
import signal
import sys
import uuid
from datetime import time as clock
from pathlib import Path
from typing import Any, Callable, Dict, List

import asyncpg
import pytest
from rasa.shared.core.domain import Domain
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from kefu.domain.policy import load_policy
from kefu.domain.policy.loader import Policy, WorkingHours
from tests.processes import Started, free_offset, port_open, printed, start

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

STACK_BASE_PORTS = (5005, 5055, 8080, 8090)
STACK_TOKEN = "kefu-test-token"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@dataclasses.dataclass
class Stack:
    started: Started
    offset: int
    token: str = STACK_TOKEN

    @property
    def rasa(self) -> str:
        return f"http://127.0.0.1:{5005 + self.offset}"

    @property
    def actions(self) -> str:
        return f"http://127.0.0.1:{5055 + self.offset}"

    @property
    def desk(self) -> str:
        return f"http://127.0.0.1:{8080 + self.offset}"

    @property
    def ports(self) -> List[int]:
        return [port + self.offset for port in STACK_BASE_PORTS]

    def output(self) -> str:
        return self.started.output()


@pytest.fixture(scope="session")
def stack(model_path, tmp_path_factory) -> Any:
    """`kefu run` (Rasa, actions, demo orders, desk) on free loopback ports; Ctrl-C at the
    end, which must stop every service."""
    work = tmp_path_factory.mktemp("stack")
    offset = free_offset(STACK_BASE_PORTS)
    env = {
        "KEFU_RASA_TOKEN": STACK_TOKEN,
        "KEFU_PORT_OFFSET": str(offset),
        "KEFU_DATABASE_URL": f"sqlite:///{work / 'kefu.db'}",
        # The browser tests send 100 messages in one conversation; test_desk tests the limit.
        "KEFU_RATE_PER_MINUTE": "100000",
    }
    kefu = [str(Path(sys.executable).parent / "kefu"), "run"]
    started = start("kefu run", kefu, work / "kefu-run.log", printed("Press Ctrl-C"), env)
    running = Stack(started, offset)
    yield running
    assert started.stop(signal.SIGINT, 60) == 0, running.output()[-3000:]
    assert "kefu: stopped." in running.output()
    assert not [p for p in running.ports if port_open(p)], "a service outlived Ctrl-C"


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


@pytest.fixture(autouse=True)
def rasa_as_shipped():
    """Every test starts and ends on Rasa as shipped: a test that installs a runtime fix
    or the action deadline has them taken back, whatever happens in it."""
    from kefu.rasa import deadline, fixes

    yield
    fixes.uninstall()
    deadline.uninstall()


# Fixtures that start kefu's processes or use the machine's PostgreSQL: `make test-fast`
# leaves out every test that needs one (`-m "not servers"`).
SERVER_FIXTURES = frozenset({"stack", "rasa_without_actions", "scaled", "pg_url", "gated"})


def pytest_collection_modifyitems(config: Any, items: List[Any]) -> None:
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())) or (
            "postgres" in params.values()
        ):
            item.add_marker(pytest.mark.servers)
