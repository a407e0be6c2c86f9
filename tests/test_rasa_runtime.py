"""kefu's fix for Rasa's hot path keeps Rasa's validation exactly."""

from __future__ import annotations

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.utils.endpoints import EndpointConfig

from kefu import rasa_runtime

VALID = {"events": [{"event": "slot", "name": "x", "value": 1}], "responses": [{"text": "您好"}]}
INVALID = {"events": "not a list", "responses": []}


@pytest.fixture
def action():
    return RemoteAction("action_x", EndpointConfig("http://127.0.0.1:1/webhook"))


def verdict(action, result):
    try:
        return action._validate_action_result(result), None
    except ValidationError as e:
        return False, e.message


def test_the_compiled_validator_gives_rasas_verdicts_and_messages(action, monkeypatch):
    original = RemoteAction._validate_action_result
    before = [verdict(action, r) for r in (VALID, INVALID)]
    monkeypatch.setattr(rasa_runtime, "_installed", False)
    monkeypatch.setattr(RemoteAction, "_validate_action_result", original)
    rasa_runtime.install()
    rasa_runtime.install()  # idempotent
    after = [verdict(action, r) for r in (VALID, INVALID)]
    assert RemoteAction._validate_action_result is rasa_runtime._validate_action_result
    assert after == before and after[0] == (True, None)
    assert "Failed to validate Action server response" in after[1][1]


def test_the_schema_is_checked_once(monkeypatch):
    calls = []
    cls = type(rasa_runtime.action_result_validator())
    monkeypatch.setattr(cls, "check_schema", classmethod(lambda c, s: calls.append(s)))
    rasa_runtime.action_result_validator.cache_clear()
    for _ in range(5):
        rasa_runtime.action_result_validator().validate(VALID)
    assert len(calls) == 1
    rasa_runtime.action_result_validator.cache_clear()


def test_the_action_server_deadline_comes_from_the_environment(monkeypatch):
    from rasa.core.actions import action

    monkeypatch.setattr(rasa_runtime, "_installed", False)
    monkeypatch.setattr(action, "DEFAULT_REQUEST_TIMEOUT", 300)
    monkeypatch.setattr(
        RemoteAction, "_validate_action_result", RemoteAction._validate_action_result
    )
    monkeypatch.setenv("KEFU_ACTION_TIMEOUT_S", "6")
    rasa_runtime.install()
    assert action.DEFAULT_REQUEST_TIMEOUT == 6
    monkeypatch.setenv("KEFU_ACTION_TIMEOUT_S", "soon")
    assert rasa_runtime.action_timeout_s() == rasa_runtime.DEFAULT_ACTION_TIMEOUT_S
