"""A stored conversation as a test story (`kefu review story`), read back by Rasa."""

from __future__ import annotations

import pytest
import yaml
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader

from kefu.rasa.stories import as_test_story


def user(text, intent, confidence=0.9, entities=()):
    return {
        "event": "user",
        "timestamp": 1.0,
        "text": text,
        "parse_data": {
            "intent": {"name": intent, "confidence": confidence},
            "entities": list(entities),
        },
    }


def action(name):
    return {"event": "action", "timestamp": 1.0, "name": name}


def slot(name, value):
    return {"event": "slot", "timestamp": 1.0, "name": name, "value": value}


OPENING = [
    action("action_session_start"),
    {"event": "session_started", "timestamp": 1.0},
    slot("title", "先生"),  # carried over into the session: not the visitor's doing
    action("action_listen"),
    {**user("EXTERNAL: greet", "greet", 1.0), "metadata": {"is_external": True}},
    action("utter_greet"),
    {"event": "bot", "timestamp": 1.0, "text": "您好"},
    action("action_listen"),
]
ORDER = [
    user(
        "訂單JD20231118001到哪了",
        "query_order",
        entities=[{"entity": "order_id", "start": 2, "end": 15, "value": "JD20231118001"}],
    ),
    slot("order_id", "JD20231118001"),
    action("order_form"),
    {"event": "active_loop", "timestamp": 1.0, "name": "order_form"},
    slot("requested_slot", None),
    {"event": "active_loop", "timestamp": 1.0, "name": None},
    action("action_lookup_order"),
    action("action_listen"),
]


def steps(story_yaml: str):
    return yaml.safe_load(story_yaml)["stories"][0]["steps"]


def test_a_conversation_becomes_a_test_story_rasa_reads(domain: Domain, tmp_path):
    story = as_test_story("c1", OPENING + ORDER)
    assert story.startswith("# kefu review story c1")
    written = steps(story)
    assert written[0] == {"intent": "greet"}  # the desk's opening greeting
    assert written[2] == {"user": "訂單[JD20231118001](order_id)到哪了\n", "intent": "query_order"}
    assert {"slot_was_set": [{"title": "先生"}]} not in written
    assert {"active_loop": "order_form"} in written and written[-1] == {
        "action": "action_lookup_order"
    }
    assert story.index("user:") < story.index("intent: query_order")  # as in tests/stories/

    path = tmp_path / "story.yml"
    path.write_text(story, encoding="utf-8")
    [read] = YAMLStoryReader(domain).read_from_file(path, skip_validation=False)
    users = [e for e in read.events if isinstance(e, UserUttered)]
    assert [u.text for u in users][1] == "訂單JD20231118001到哪了"
    assert users[1].entities[0]["value"] == "JD20231118001"


def test_the_story_stops_where_the_bot_stopped_answering():
    handed_over = [
        user("我要人工", "ask_human"),
        action("action_handoff"),
        slot("handoff_reason", "customer_request"),
        action("action_listen"),
        user("还要等多久", "urge"),  # while queued: the desk appends it, nothing answers
        {"event": "bot", "timestamp": 1.0, "text": "您前面还有0位"},
        user("你好", "greet"),
    ]
    story = as_test_story("c2", OPENING + handed_over)
    assert "Stopped at the first turn the bot did not answer" in story
    written = steps(story)
    assert written[-2:] == [
        {"action": "action_handoff"},
        {"slot_was_set": [{"handoff_reason": "customer_request"}]},
    ]
    assert "还要等多久" not in story


def test_a_conversation_with_no_answered_turn_is_refused():
    with pytest.raises(ValueError):
        as_test_story("c3", [user("hi", "greet")])
