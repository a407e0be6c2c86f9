"""Shared fixtures, in the style of rasa-demo: real Domain, Tracker and dispatcher."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
from rasa.shared.core.domain import Domain
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from kefu.policy import load_policy
from kefu.policy.loader import Policy

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
