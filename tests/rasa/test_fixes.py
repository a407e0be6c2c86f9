"""kefu's runtime fixes: guarded, selectable, undoable, and each gives Rasa's own results."""

from __future__ import annotations

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.utils.endpoints import EndpointConfig

from kefu.rasa import deadline, fixes
from kefu.rasa.fixes import action_schema, dialogue_states, endpoint_sessions, event_types
from kefu.rasa.fixes.base import Patch, RuntimeFix, RuntimeFixError
from kefu.rasa.states import freeze_states
from kefu.rasa.ted_policy import DEFAULT_TED_CACHE, CachedTEDPolicy, PredictionCache, ted_cache_size

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
    fixes.install("action_schema")
    fixes.install("action_schema")  # idempotent
    after = [verdict(action, r) for r in (VALID, INVALID)]
    assert RemoteAction._validate_action_result is action_schema.validate_action_result
    fixes.uninstall()
    assert RemoteAction._validate_action_result is original
    assert after == before and after[0] == (True, None)
    assert "Failed to validate Action server response" in after[1][1]


def test_the_schema_is_checked_once(monkeypatch):
    calls = []
    cls = type(action_schema.action_result_validator())
    monkeypatch.setattr(cls, "check_schema", classmethod(lambda c, s: calls.append(s)))
    action_schema.action_result_validator.cache_clear()
    for _ in range(5):
        action_schema.action_result_validator().validate(VALID)
    assert len(calls) == 1
    action_schema.action_result_validator.cache_clear()


def test_the_action_server_deadline_comes_from_the_environment(monkeypatch):
    from rasa.core.actions import action

    rasas = action.DEFAULT_REQUEST_TIMEOUT
    monkeypatch.setenv("KEFU_ACTION_TIMEOUT_S", "6")
    monkeypatch.setenv("KEFU_RUNTIME_FIXES", "none")  # the deadline is not a runtime fix
    assert deadline.install() == 6 and action.DEFAULT_REQUEST_TIMEOUT == 6
    monkeypatch.setenv("KEFU_ACTION_TIMEOUT_S", "soon")
    assert deadline.action_timeout_s() == deadline.DEFAULT_ACTION_TIMEOUT_S
    deadline.uninstall()
    assert action.DEFAULT_REQUEST_TIMEOUT == rasas


@pytest.fixture(scope="module")
def ted_and_trackers(model_path, tmp_path_factory):
    """The trained model's TEDPolicy, and every dialogue of the training and test stories."""
    from rasa.engine.graph import ExecutionContext
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.shared.core.generator import TrainingDataGenerator
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import (
        YAMLStoryReader,
    )
    from rasa.shared.core.training_data.structures import StoryGraph

    storage, metadata = LocalModelStorage.from_model_archive(
        tmp_path_factory.mktemp("model"), model_path
    )
    node = next(n for n in metadata.predict_schema.nodes.values() if n.uses is CachedTEDPolicy)
    context = ExecutionContext(metadata.predict_schema, metadata.model_id)
    config = {**CachedTEDPolicy.get_default_config(), **node.config}
    ted = CachedTEDPolicy.load(config, storage, node.resource, context)
    # The model's own domain: it has what the importers added (the FAQ's utter_faq).
    domain = metadata.domain
    steps = []
    for folder in ("data/stories", "data/rules", "tests/stories"):
        for path in sorted((model_path.parents[1] / folder).glob("*.yml")):
            steps += YAMLStoryReader(domain).read_from_file(path)
    trackers = TrainingDataGenerator(
        StoryGraph(steps), domain, augmentation_factor=0
    ).generate_story_trackers()
    return ted, domain, trackers


def ted_predictions(predict, domain, trackers):
    out = []
    for tracker in trackers:
        for prior, _ in tracker.generate_all_prior_trackers():
            prediction = predict(prior, domain)
            out.append((prediction.probabilities, prediction.is_end_to_end_prediction))
    return out


@pytest.mark.slow
def test_teds_cache_gives_teds_own_predictions(ted_and_trackers):
    from rasa.core.policies.ted_policy import TEDPolicy

    ted, domain, trackers = ted_and_trackers
    uncached = ted_predictions(
        lambda t, d: TEDPolicy.predict_action_probabilities(ted, t, d), domain, trackers
    )
    first = ted_predictions(ted.predict_action_probabilities, domain, trackers)
    again = ted_predictions(ted.predict_action_probabilities, domain, trackers)
    cache = ted.prediction_cache()
    assert len(uncached) > 100
    assert first == uncached and again == uncached  # the same floats, not just the argmax
    assert cache.hits >= len(uncached) and 0 < len(cache) < len(uncached)


def test_the_prediction_cache_is_bounded_and_keys_skip_text():
    cache = PredictionCache(2)
    for key in "abc":
        cache.put(key, key)
    assert len(cache) == 2 and cache.get("a") is None and cache.get("c") == "c"
    assert (cache.hits, cache.misses) == (1, 1)
    intent_only = [{"user": {"intent": "greet", "entities": ("name",)}, "slots": {"x": (1.0,)}}]
    assert freeze_states([intent_only]) is not None
    assert freeze_states([intent_only]) == freeze_states(
        [[{"slots": {"x": (1.0,)}, "user": {"entities": ("name",), "intent": "greet"}}]]
    )
    assert freeze_states([[{"user": {"text": "你好"}}]]) is None
    assert freeze_states([[{"prev_action": {"action_text": "您好"}}]]) is None


def test_the_ted_cache_size_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("KEFU_TED_CACHE", "0")
    assert ted_cache_size() == 0
    monkeypatch.setenv("KEFU_TED_CACHE", "nonsense")
    assert ted_cache_size() == DEFAULT_TED_CACHE


def test_event_types_resolve_as_rasa_does():
    from rasa.shared.core.events import ActionExecuted, Event, SlotSet, UserUttered

    fixes.install("event_types")
    assert Event.resolve_by_type("user") is UserUttered
    assert Event.resolve_by_type("slot") is SlotSet
    assert Event.resolve_by_type("action") is ActionExecuted
    assert Event.resolve_by_type("topic") is None
    assert Event.resolve_by_type("no-such-event", default=SlotSet) is SlotSet
    with pytest.raises(ValueError):
        Event.resolve_by_type("no-such-event")


# --- second profile: dask-free graphs, shared states, concrete functions, fast schema


def test_a_response_is_surely_valid_only_when_rasas_schema_accepts_it():
    from jsonschema import Draft202012Validator

    full = action_schema.action_result_validator()
    assert isinstance(full, Draft202012Validator) or full.is_valid({})
    user = {
        "event": "user",
        "text": "你好",
        "parse_data": {"intent": {"name": "greet", "confidence": 0.9}, "entities": []},
    }
    valid = [
        {},
        {"events": [], "responses": []},
        VALID,
        {"events": [user, {"event": "action", "name": "action_listen", "policy": None}]},
        {"events": [{"event": "slot", "name": "x", "value": None, "timestamp": 1.5}]},
        {"events": [{"event": "active_loop", "name": None}, {"event": "followup", "name": "a"}]},
        {"events": [{"event": "bot", "text": "您好", "metadata": {"a": 1}}]},
        {"events": [{"event": "entities", "entities": [{"entity": "name", "value": "王"}]}]},
    ]
    invalid = [
        INVALID,
        {"events": [{"event": "slot", "name": "x"}]},  # no value
        {"events": [{"event": "no-such-event"}]},
        {"events": [{"name": "x"}]},  # no type
        {"events": ["slot"]},
        {"events": [{"event": "bot", "timestamp": "now"}]},
        {"events": [{"event": "bot", "metadata": []}]},
        {"events": [{**user, "parse_data": {"entities": [{"entity": "x"}]}}]},
        {"events": [{"event": "entities", "entities": "name"}]},
        {"responses": ["您好"]},
        {"responses": {"text": "您好"}},
        ["not", "an", "object"],
    ]
    for result in valid:
        assert full.is_valid(result), result
        assert action_schema.surely_valid(result), result
    for result in invalid:
        assert not full.is_valid(result), result
        assert not action_schema.surely_valid(result), result
    # Every event type Rasa knows has its branch, and only those.
    from rasa.shared.utils.schemas.events import EVENT_SCHEMA

    assert len(action_schema.event_validators()) == len(EVENT_SCHEMA["oneOf"]) == 23


def test_an_invalid_response_still_gets_rasas_error(action):
    fixes.install("action_schema")
    with pytest.raises(ValidationError) as raised:
        action._validate_action_result({"events": [{"event": "slot", "name": "x"}]})
    assert "Failed to validate Action server response" in raised.value.message


def plain_trackers(domain, trackers):
    """Each story's prior trackers as the DialogueStateTrackers a server predicts on."""
    from rasa.shared.core.trackers import DialogueStateTracker

    out = []
    for story in trackers:
        events = list(story.events)
        for n in range(1, len(events) + 1):
            out.append(DialogueStateTracker.from_events("t", events[:n], domain.slots))
    return out


@pytest.mark.slow
def test_shared_states_are_rasas_states_and_callers_cannot_spoil_them(ted_and_trackers):
    from rasa.core.featurizers.tracker_featurizers import MaxHistoryTrackerFeaturizer

    fixes.install("dialogue_states")
    _, domain, trackers = ted_and_trackers
    original_states = dialogue_states.FIX.patch("past_states").call_original
    original_prediction = dialogue_states.FIX.patch("prediction_states").call_original
    rule_data = {"slots": ["requested_slot"], "loops": ["order_form"]}
    featurizers = [MaxHistoryTrackerFeaturizer(None, max_history=n) for n in (None, 4, 5)]
    checked = 0
    for tracker in plain_trackers(domain, trackers)[::3]:
        for ignore in (False, True):
            fresh = original_states(tracker, domain, False, ignore, rule_data)
            first = tracker.past_states(
                domain, ignore_rule_only_turns=ignore, rule_only_data=rule_data
            )
            assert first == fresh
            for state in first:  # a caller edits its copy ...
                state.clear()
            # ... and the next caller still gets Rasa's states
            assert (
                tracker.past_states(domain, ignore_rule_only_turns=ignore, rule_only_data=rule_data)
                == fresh
            )
            for featurizer in featurizers:
                for use_text in (False, True):
                    args = ([tracker], domain, use_text, ignore, rule_data, ignore)
                    expected = original_prediction(featurizer, *args)
                    assert featurizer.prediction_states(*args) == expected
                    assert featurizer.prediction_states(*args) == expected  # from the cache
                    checked += 1
    assert checked > 500


@pytest.fixture
def agent(model_path):
    """The process's one loaded model (kefu.rasa.parsing), with every fix installed; the
    fixes patch classes, not the loaded model, so the same Agent serves both runs."""
    from kefu.rasa.parsing import load_agent

    fixes.install("all")
    yield load_agent(str(model_path.resolve()))
    fixes.uninstall()


SAMPLE = [
    "你好",
    "我的快递到哪了",
    "订单号2023112500123456",
    "我想退貨",
    "垃圾客服",
    "886",
    "尺码不合适",
]


@pytest.mark.slow
async def test_graphs_without_dask_and_concrete_functions_give_rasas_results(agent, monkeypatch):
    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.utils.tensorflow.models import RasaModel

    async def conversation(sender):
        import random

        import numpy as np

        random.seed(7)
        np.random.seed(7)  # responses with variants are picked at random
        replies, parses = [], []
        for text in SAMPLE:
            parses.append(await agent.parse_message(text))
            out = CollectingOutputChannel()
            await agent.handle_message(UserMessage(text, out, sender))
            replies.append([m.get("text") for m in out.messages])
        tracker = await agent.tracker_store.retrieve(sender)
        actions = [e.action_name for e in tracker.events if e.type_name == "action"]
        return parses, replies, actions

    kefu = await conversation("kefu")
    fixes.uninstall()  # Rasa as shipped, dask and all
    assert DaskGraphRunner.run is not fixes.FIXES["graph_runner"].patches[0].replacement
    assert RasaModel._rasa_predict is not fixes.FIXES["concrete_predict"].patches[0].replacement
    rasa_ = await conversation("rasa")
    assert kefu == rasa_  # the same floats in every parse, the same replies and actions
    assert any(p["entities"] for p in kefu[0])


def test_the_graph_runner_keeps_rasas_input_and_error_rules():
    from rasa.engine.exceptions import GraphRunError
    from rasa.engine.graph import GraphSchema, SchemaNode
    from rasa.engine.runner.dask import DaskGraphRunner

    class Node:
        def __init__(self, name, fn):
            self.name, self.fn = name, fn

        def __call__(self, *inputs):
            return self.name, self.fn(*(value for _, value in inputs))

    schema = GraphSchema(
        {
            "double": SchemaNode({"x": "__x__"}, object, "", "", {}),
            "sum": SchemaNode({"a": "double", "b": "__x__"}, object, "", "", {}, is_target=True),
            "boom": SchemaNode({"x": "__x__"}, object, "", "", {}, is_target=True),
        }
    )
    runner = DaskGraphRunner.__new__(DaskGraphRunner)
    runner._graph_schema = schema

    def explode(x):
        raise RuntimeError("boom")

    runner._instantiated_nodes = {
        "double": Node("double", lambda x: 2 * x),
        "sum": Node("sum", lambda a, b: a + b),
        "boom": Node("boom", explode),
    }
    fixes.install("graph_runner")
    assert runner.run(inputs={"__x__": 3}, targets=["sum"]) == {"sum": 9}
    assert runner.run(inputs={"__x__": 4}, targets=["double", "sum"]) == {"double": 8, "sum": 12}
    with pytest.raises(GraphRunError):
        runner.run(inputs={"__x__": 1}, targets=["boom"])
    with pytest.raises(GraphRunError, match="clashes with a node name"):
        runner.run(inputs={"__x__": "double"}, targets=["sum"])


def test_sparse_features_join_as_scipy_joins_them():
    import numpy as np
    import scipy.sparse as sp
    from rasa.shared.nlu.training_data.features import Features

    fixes.install("sparse_join")
    rng = np.random.default_rng(3)

    def coo(rows, cols, dtype, density):
        return sp.random(rows, cols, density=density, format="coo", dtype=dtype, random_state=rng)

    cases = [
        (coo(5, 7, np.float64, 0.3), coo(5, 40, np.float64, 0.1)),
        (coo(1, 3, np.float32, 0.9), coo(1, 9, np.float64, 0.5)),
        (coo(4, 6, np.float64, 0.0), coo(4, 2, np.float64, 0.5)),  # no entries at all
        (coo(3, 70000, np.float32, 0.0001), coo(3, 5, np.float32, 1.0)),
    ]
    for a, b in cases:
        ours = Features(a.copy(), "sequence", "text", "x")
        ours.combine_with_features(Features(b.copy(), "sequence", "text", "y"))
        scipys = sp.hstack([a, b])
        got = ours.features
        assert type(got) is type(scipys) and got.shape == scipys.shape
        assert got.dtype == scipys.dtype and got.row.dtype == scipys.row.dtype
        for field in ("data", "row", "col"):
            assert np.array_equal(getattr(got, field), getattr(scipys, field))
    # Other formats and mismatched rows go to Rasa's own code, errors included.
    csr = Features(sp.random(2, 3, density=0.5, format="csr"), "sequence", "text", "x")
    csr.combine_with_features(Features(coo(2, 4, np.float64, 0.5), "sequence", "text", "y"))
    assert csr.features.shape == (2, 7)
    with pytest.raises(ValueError, match="sequence dimensions"):
        Features(coo(2, 3, np.float64, 0.5), "sequence", "text", "x").combine_with_features(
            Features(coo(3, 3, np.float64, 0.5), "sequence", "text", "y")
        )


async def test_action_calls_share_one_session_and_connection(aiohttp_server):
    from aiohttp import web

    peers = []

    async def webhook(request):
        peers.append(request.transport.get_extra_info("peername"))
        return web.json_response({"events": [], "responses": []})

    def make_app():
        app = web.Application()
        app.router.add_post("/webhook", webhook)
        return app

    server = await aiohttp_server(make_app())
    fixes.install("endpoint_sessions")
    endpoint = EndpointConfig(f"http://127.0.0.1:{server.port}/webhook")
    for _ in range(3):
        assert await endpoint.request(json={}, method="post") == {"events": [], "responses": []}
    assert len(set(peers)) == 1  # one connection, kept alive
    shared = [s for (e, _, s) in endpoint_sessions._sessions.values() if e is endpoint]
    assert len(shared) == 1 and not shared[0].closed
    # The server drops its connections: the next call opens a new one.
    port = server.port
    await server.close()
    server = await aiohttp_server(make_app(), port=port)
    assert server.port == port
    assert await endpoint.request(json={}, method="post") == {"events": [], "responses": []}
    assert len(set(peers)) == 2
    endpoint_sessions.close_sessions()
    assert shared[0].closed and not endpoint_sessions._sessions


# --- the guard: version, fingerprints, selection, undo ---------------------------------


def test_every_fix_is_verified_against_this_rasa_and_can_be_undone():
    from rasa.shared.core.events import Event

    assert fixes.rasa_version() == fixes.SUPPORTED_RASA == "3.6.21"
    originals = {
        (patch.target, patch.attribute): patch.owner().__dict__[patch.attribute]
        for fix in fixes.FIXES.values()
        for patch in fix.patches
    }
    assert all(entry["verified"] and not entry["installed"] for entry in fixes.status())
    assert fixes.install() == list(fixes.FIXES)  # KEFU_RUNTIME_FIXES unset: all
    assert all(entry["installed"] for entry in fixes.status())
    assert Event.__dict__["resolve_by_type"].__func__ is event_types.resolve_by_type
    fixes.uninstall()
    for (target, attribute), original in originals.items():
        patch = Patch(target, attribute, lambda: None, "")
        assert patch.owner().__dict__[attribute] is original
    assert not any(entry["installed"] for entry in fixes.status())


def test_the_selection_comes_from_kefu_runtime_fixes(monkeypatch):
    monkeypatch.setenv("KEFU_RUNTIME_FIXES", "none")
    assert fixes.install() == []
    monkeypatch.setenv("KEFU_RUNTIME_FIXES", " sparse_join, event_types ")
    assert fixes.selected() == ["event_types", "sparse_join"]  # in the registry's order
    with pytest.raises(RuntimeFixError, match="unknown fix dask"):
        fixes.selected("event_types,dask")


def test_a_fix_refuses_loudly_when_the_original_changed(monkeypatch):
    from rasa.shared.nlu.training_data.features import Features

    def changed(self, other):  # stands for an upgraded Rasa's different code
        return None

    original = Features.__dict__["_combine_sparse_features"]
    monkeypatch.setattr(Features, "_combine_sparse_features", changed)
    with pytest.raises(RuntimeFixError, match="sparse_join.*fingerprint"):
        fixes.install("event_types,sparse_join")
    # all or nothing: the fix installed before the refusal was taken back
    assert not fixes.FIXES["event_types"].installed
    assert Features.__dict__["_combine_sparse_features"] is changed
    monkeypatch.setattr(Features, "_combine_sparse_features", original)


def test_a_fix_refuses_another_rasa_version(monkeypatch):
    import rasa.version

    monkeypatch.setattr(rasa.version, "__version__", "3.7.0")
    fix = RuntimeFix("example", "an example", [])
    assert fix.problems() == ["Rasa 3.7.0 installed; the fix was checked against 3.6.21"]
    with pytest.raises(RuntimeFixError, match="refused: Rasa 3.7.0"):
        fix.install()
    assert not any(entry["verified"] for entry in fixes.status())


def test_the_launcher_refuses_to_start_rasa_with_an_unknown_fix(tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "kefu.rasa", "--version"],
        env={"KEFU_RUNTIME_FIXES": "no_such_fix", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "unknown fix no_such_fix" in done.stderr and "kefu doctor" in done.stderr
