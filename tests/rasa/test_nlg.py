"""Every response goes through the guarded NLG: variables, names, script."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Dict

import pytest
from rasa.shared.core.events import SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from kefu.domain.phrasing.context import ReplyContext, surname_of
from kefu.domain.phrasing.guard import Guard
from kefu.domain.policy.loader import Phrase
from kefu.rasa.nlg import GuardedNaturalLanguageGenerator


@pytest.fixture
def nlg(domain, policy):
    return GuardedNaturalLanguageGenerator(domain=domain, guard=Guard(policy))


def said(text: str, script: str = "simplified", normalised: str | None = None) -> UserUttered:
    parse: Dict[str, Any] = {
        "intent": {"name": "inform", "confidence": 1.0},
        "entities": [],
        "script": script,
        "text": normalised or text,
    }
    return UserUttered(text, parse_data=parse)


def tracker(domain, *events: Any) -> DialogueStateTracker:
    return DialogueStateTracker.from_events("visitor", list(events), domain.slots)


GREETINGS = ("早上好", "上午好", "下午好", "晚上好")


async def test_opening_carries_greeting_brand_and_bot_name(nlg, domain, policy):
    response = await nlg.generate("utter_greet", tracker(domain), "rest")
    assert response is not None
    text = response["text"]
    assert text.startswith(GREETINGS)
    assert policy.brand.name in text and policy.brand.bot_name in text
    assert text.endswith("请问有什么可以帮您？")
    assert "{" not in text


async def test_opening_uses_surname_and_title_the_visitor_gave(nlg, domain):
    t = tracker(domain, said("叫我王女士"), SlotSet("name", "王"))
    response = await nlg.generate("utter_greet", t, "rest")
    assert response["text"].startswith(tuple("王女士" + g for g in GREETINGS))


async def test_surname_alone_never_guesses_a_gender(nlg, domain):
    t = tracker(domain, said("我姓王"), SlotSet("name", "王"))
    response = await nlg.generate("utter_greet", t, "rest")
    assert response["text"].startswith(GREETINGS)
    assert "先生" not in response["text"] and "女士" not in response["text"]


async def test_policy_phrases_are_rendered_and_guarded(domain, policy):
    scenes = {"idle": Phrase("idle", "{addressee}，请问您还在线吗？", "kefu")}
    nlg = GuardedNaturalLanguageGenerator(
        domain=domain, guard=Guard(dataclasses.replace(policy, phrases=scenes))
    )
    t = tracker(
        domain,
        said("叫我陳先生", script="traditional", normalised="叫我陈先生"),
        SlotSet("name", "陈"),
    )
    response = await nlg.generate("phrase_idle", t, "rest")
    assert response == {"text": "陳先生，請問您還在線嗎？"}


async def test_traditional_visitor_gets_traditional_reply(nlg, domain):
    t = tracker(domain, said("我要轉人工", script="traditional", normalised="我要转人工"))
    response = await nlg.generate("utter_hold_on", t, "rest")
    assert "這裡" in response["text"] and "这里" not in response["text"]


async def test_script_follows_the_last_message_that_shows_one(nlg, domain):
    t = tracker(
        domain, said("謝謝", script="traditional", normalised="谢谢"), said("ok", script="unknown")
    )
    response = await nlg.generate("utter_thank", t, "rest")
    assert "這是我們應該做的" in response["text"]


async def test_unknown_name_gives_nothing(nlg, domain):
    assert await nlg.generate("phrase_no_such_scene", tracker(domain), "rest") is None
    assert await nlg.generate("utter_no_such_response", tracker(domain), "rest") is None


def test_time_of_day_greeting_uses_policy_time_zone(policy):
    guard = Guard(policy)
    morning = datetime.fromisoformat("2026-11-23T00:30:00+00:00")  # 08:30 in Shanghai
    evening = datetime.fromisoformat("2026-11-23T12:30:00+00:00")  # 20:30 in Shanghai
    assert guard.variables(ReplyContext(now=morning))["greeting"] == "早上好"
    assert guard.variables(ReplyContext(now=evening))["greeting"] == "晚上好"


@pytest.mark.parametrize(
    "name, surname", [("王", "王"), ("王芳", "王"), ("欧阳娜娜", "欧阳"), ("", None)]
)
def test_surname_of(name: str, surname: str | None):
    assert surname_of(name) == surname


def test_greeting_follows_the_visitors_own_time_zone(policy):
    guard = Guard(policy)
    moment = datetime.fromisoformat("2026-11-23T00:30:00+00:00")  # 08:30 in Shanghai
    assert guard.variables(ReplyContext(now=moment))["greeting"] == "早上好"
    # 19:30 the evening before in New York; 16:30 in Los Angeles.
    assert (
        guard.variables(ReplyContext(now=moment, timezone="America/New_York"))["greeting"]
        == "晚上好"
    )
    assert (
        guard.variables(ReplyContext(now=moment, timezone="America/Los_Angeles"))["greeting"]
        == "下午好"
    )
    # A zone that does not exist falls back to the policy's default.
    assert (
        guard.variables(ReplyContext(now=moment, timezone="Mars/Olympus"))["greeting"] == "早上好"
    )


async def test_nlg_reads_the_zone_from_message_metadata(nlg, domain):
    turn = UserUttered(
        "你好",
        parse_data={
            "intent": {"name": "greet", "confidence": 1.0},
            "entities": [],
            "script": "simplified",
        },
        metadata={"timezone": "Europe/London"},
    )
    from kefu.rasa.nlg import reply_context

    assert reply_context(tracker(domain, turn)).timezone == "Europe/London"
