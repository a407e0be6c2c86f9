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


@pytest.fixture(scope="module")
def ted_and_trackers(model_path, tmp_path_factory):
    """The trained model's TEDPolicy, and every dialogue of the training and test stories."""
    from rasa.core.policies.ted_policy import TEDPolicy
    from rasa.engine.graph import ExecutionContext
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.generator import TrainingDataGenerator
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import (
        YAMLStoryReader,
    )
    from rasa.shared.core.training_data.structures import StoryGraph

    storage, metadata = LocalModelStorage.from_model_archive(
        tmp_path_factory.mktemp("model"), model_path
    )
    node = next(
        n for n in metadata.predict_schema.nodes.values() if n.uses is TEDPolicy
    )
    context = ExecutionContext(metadata.predict_schema, metadata.model_id)
    config = {**TEDPolicy.get_default_config(), **node.config}
    ted = TEDPolicy.load(config, storage, node.resource, context)
    domain = Domain.load(str(model_path.parents[1] / "domain.yml"))
    steps = []
    for folder in ("data/stories", "data/rules", "tests/stories"):
        for path in sorted((model_path.parents[1] / folder).glob("*.yml")):
            steps += YAMLStoryReader(domain).read_from_file(path)
    trackers = TrainingDataGenerator(
        StoryGraph(steps), domain, augmentation_factor=0
    ).generate_story_trackers()
    return ted, domain, trackers


def ted_predictions(ted, domain, trackers):
    out = []
    for tracker in trackers:
        for prior, _ in tracker.generate_all_prior_trackers():
            prediction = ted.predict_action_probabilities(prior, domain)
            out.append((prediction.probabilities, prediction.is_end_to_end_prediction))
    return out


@pytest.mark.slow
def test_teds_cache_gives_teds_own_predictions(ted_and_trackers, monkeypatch):
    from rasa.core.policies.ted_policy import TEDPolicy

    ted, domain, trackers = ted_and_trackers
    original = TEDPolicy.predict_action_probabilities
    monkeypatch.setattr(rasa_runtime, "_installed", False)
    monkeypatch.setattr(
        RemoteAction, "_validate_action_result", RemoteAction._validate_action_result
    )
    rasa_runtime.install()
    monkeypatch.setattr(TEDPolicy, "predict_action_probabilities", original)  # restore after
    uncached = ted_predictions(ted, domain, trackers)
    cached = rasa_runtime._ted_predict_action_probabilities
    monkeypatch.setattr(TEDPolicy, "predict_action_probabilities", cached)
    first = ted_predictions(ted, domain, trackers)
    again = ted_predictions(ted, domain, trackers)
    cache = ted.__dict__["_kefu_prediction_cache"]
    assert len(uncached) > 100
    assert first == uncached and again == uncached  # the same floats, not just the argmax
    assert cache.hits >= len(uncached) and 0 < len(cache) < len(uncached)


def test_the_prediction_cache_is_bounded_and_keys_skip_text():
    cache = rasa_runtime.PredictionCache(2)
    for key in "abc":
        cache.put(key, key)
    assert len(cache) == 2 and cache.get("a") is None and cache.get("c") == "c"
    assert (cache.hits, cache.misses) == (1, 1)
    intent_only = [{"user": {"intent": "greet", "entities": ("name",)}, "slots": {"x": (1.0,)}}]
    assert rasa_runtime.freeze_states([intent_only]) is not None
    assert rasa_runtime.freeze_states([intent_only]) == rasa_runtime.freeze_states(
        [[{"slots": {"x": (1.0,)}, "user": {"entities": ("name",), "intent": "greet"}}]]
    )
    assert rasa_runtime.freeze_states([[{"user": {"text": "你好"}}]]) is None
    assert rasa_runtime.freeze_states([[{"prev_action": {"action_text": "您好"}}]]) is None


def test_the_ted_cache_size_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("KEFU_TED_CACHE", "0")
    assert rasa_runtime.ted_cache_size() == 0
    monkeypatch.setenv("KEFU_TED_CACHE", "nonsense")
    assert rasa_runtime.ted_cache_size() == rasa_runtime.DEFAULT_TED_CACHE


def test_event_types_resolve_as_rasa_does():
    from rasa.shared.core.events import ActionExecuted, Event, SlotSet, UserUttered

    rasa_runtime.install()
    assert Event.resolve_by_type("user") is UserUttered
    assert Event.resolve_by_type("slot") is SlotSet
    assert Event.resolve_by_type("action") is ActionExecuted
    assert Event.resolve_by_type("topic") is None
    assert Event.resolve_by_type("no-such-event", default=SlotSet) is SlotSet
    with pytest.raises(ValueError):
        Event.resolve_by_type("no-such-event")
