"""The guard: a forbidden phrase never reaches a visitor."""

from __future__ import annotations

import logging

import pytest
import yaml
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker

from kefu.domain.phrasing.context import ReplyContext
from kefu.domain.phrasing.guard import Guard
from kefu.rasa.nlg import GuardedNaturalLanguageGenerator
from kefu.tools.evaluation import PHRASING_LABELLED


@pytest.fixture(scope="module")
def guard(policy):
    return Guard(policy)


def test_compliant_text_passes_unchanged(guard):
    assert guard.enforce("感谢您的耐心等待") == "感谢您的耐心等待"


def test_fixable_text_is_repaired_and_logged(guard, caplog):
    with caplog.at_level(logging.WARNING, logger="kefu.domain.phrasing.guard"):
        assert guard.enforce("你的订单已发货") == "您的订单已发货"
    assert "you_plain" in caplog.text


def test_unfixable_text_is_replaced_by_the_safe_phrase(guard, policy, caplog):
    with caplog.at_level(logging.WARNING, logger="kefu.domain.phrasing.guard"):
        out = guard.enforce("不知道，找领导也没用")
    assert out == policy.phrases["safe_fallback"].text
    assert "dont_know" in caplog.text and "boss_useless" in caplog.text


def test_clean_texts_are_checked_once_and_repairs_every_time(policy, caplog, monkeypatch):
    guard = Guard(policy)
    checked = []
    check = guard.checker.check
    monkeypatch.setattr(guard.checker, "check", lambda text: checked.append(text) or check(text))
    for _ in range(3):
        assert guard.enforce("感谢您的耐心等待") == "感谢您的耐心等待"
    assert checked == ["感谢您的耐心等待"]
    with caplog.at_level(logging.WARNING, logger="kefu.domain.phrasing.guard"):
        for _ in range(2):
            assert guard.enforce("你的订单已发货") == "您的订单已发货"
    assert caplog.text.count("you_plain") == 2  # a repair is logged each time
    monkeypatch.setattr(Guard, "CLEAN_CACHE", 2)
    for text in ("您好，请问有什么可以帮您？", "请稍等", "非常感谢您的支持与理解"):
        guard.enforce(text)
    assert len(guard._clean) == 2 and "感谢您的耐心等待" not in guard._clean


def test_no_labelled_violation_survives_the_guard(guard):
    items = yaml.safe_load(PHRASING_LABELLED.read_text(encoding="utf-8"))
    for item in items:
        out = guard.enforce(item["text"])
        assert guard.checker.check(out) == [], (item["text"], out)


def test_guard_checks_before_mirroring_the_script(guard):
    out = guard.apply("你的订单已发货", ReplyContext(script="traditional"))
    assert out == "您的訂單已發貨"


async def test_nlg_guards_a_bad_template(policy):
    domain = Domain.from_dict(
        {
            "responses": {
                "utter_bad": [{"text": "不知道，您自己看"}],
                "utter_fixable": [{"text": "亲，{brand}为您服务"}],
            }
        }
    )
    nlg = GuardedNaturalLanguageGenerator(domain=domain, guard=Guard(policy))
    tracker = DialogueStateTracker.from_events("v", [], domain.slots)
    bad = await nlg.generate("utter_bad", tracker, "rest")
    assert bad["text"] == policy.phrases["safe_fallback"].text
    fixable = await nlg.generate("utter_fixable", tracker, "rest")
    # The rewrite reads as natural Chinese (亲 → 您好), not a bare 您.
    assert fixable["text"] == f"您好，{policy.brand.name}为您服务"
