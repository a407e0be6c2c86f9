"""The phrasing checker against the labelled texts and the issue's context cases."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kefu.domain.phrasing.checker import Checker
from kefu.tools.evaluation import FPR_BAR, PHRASING_LABELLED, RECALL_BAR, evaluate_phrasing

SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"


@pytest.fixture(scope="module")
def checker(policy):
    return Checker(policy.rules)


def rules_in(checker, text):
    return {v.rule for v in checker.check(text)}


def labelled():
    return yaml.safe_load(PHRASING_LABELLED.read_text(encoding="utf-8"))


def test_labelled_set_is_large_and_balanced():
    items = labelled()
    assert len(items) >= 150
    assert sum(1 for i in items if not i["rules"]) >= 60  # compliant near-misses too


def test_the_listed_rules_meet_the_bars_on_their_labelled_texts(policy):
    scores = evaluate_phrasing(checker=Checker(policy.rules))
    assert scores.recall >= RECALL_BAR, scores.misses
    assert scores.false_positive_rate <= FPR_BAR, scores.false_alarms


def test_rules_and_tone_model_together_on_the_labelled_texts(policy):
    # With the threshold chosen by tone-cv the model adds no false alarm here (measured
    # 0.000; it was 0.048 before, short compliant texts read as curt).
    scores = evaluate_phrasing(checker=Checker.for_policy(policy))
    assert scores.recall >= RECALL_BAR, scores.misses
    assert scores.false_positive_rate <= FPR_BAR, scores.false_alarms


def test_tone_model_catches_what_no_pattern_lists(policy):
    checker = Checker.for_policy(policy)
    text = "这个单子当时不是我接的，具体怎么回事您得去问售前那边的同事"
    found = checker.check(text)
    assert found and all(text[v.start : v.end] == v.match for v in found)
    assert {v.how for v in found} <= {"rule", "tone"}
    compliant = "非常抱歉让您久等了，我已经帮您联系快递核实，今天下班前给您回复。"
    assert checker.check(compliant) == []


def test_every_rule_has_a_positive_and_a_negative_example(policy):
    items = labelled()
    positives = {r for i in items for r in i["rules"]}
    negatives = {i["near"] for i in items if not i["rules"] and "near" in i}
    ids = {r.id for r in policy.rules}
    assert ids - positives == set(), "rules without a violating example"
    assert ids - negatives == set(), "rules without a compliant near-miss"
    assert positives | negatives <= ids, "labels name rules that do not exist"


def test_every_rule_names_its_seed(policy):
    for rule in policy.rules:
        assert rule.source == "kefu" or rule.source.endswith(".txt"), rule.id
        if SEEDS.is_dir() and rule.source != "kefu":
            assert (SEEDS / rule.source).is_file(), rule.id


# The three context cases the issue names.
@pytest.mark.parametrize("text", ["什么？", "您说什么？"])
def test_bare_what_is_forbidden(checker, text):
    assert "bare_what" in rules_in(checker, text)


def test_what_in_the_standard_opening_is_fine(checker):
    assert rules_in(checker, "您好，请问有什么可以帮您？") == set()


def test_should_as_hedging_is_forbidden(checker):
    assert "should_hedge" in rules_in(checker, "应该可以吧")


def test_should_in_the_standard_phrase_is_fine(checker):
    assert rules_in(checker, "谢谢您的表扬，这是我们应该做的。") == set()


def test_dont_know_is_forbidden_on_token_boundaries_only(checker):
    assert "dont_know" in rules_in(checker, "这个我不知道")
    assert rules_in(checker, "请问您是否知道快递单号？") == set()
    assert rules_in(checker, "请问您知不知道快递单号？") == set()  # one jieba token


def test_you_but_not_you_plural(checker):
    assert "you_plain" in rules_in(checker, "你稍等")
    assert "you_plain" not in rules_in(checker, "你们的快递员")


def test_spans_point_into_the_original_traditional_text(checker):
    text = "請稍等，應該可以吧"
    [violation] = checker.check(text)
    assert violation.rule == "should_hedge"
    assert text[violation.start : violation.end] == violation.match == "應該"


def test_violation_carries_reason_rewrite_and_source(checker):
    found = checker.check("喂")
    assert {v.rule for v in found} == {"wei", "too_short"}  # a lone 喂 is too short as well
    record = next(v for v in found if v.rule == "wei").as_dict()
    assert record["rule"] == "wei" and record["span"] == [0, 1]
    assert record["reason"] and record["rewrite"] == "您好"
    assert record["source"].endswith(".txt")


def test_empty_text_has_no_violations(checker):
    assert checker.check("") == [] and checker.check("   ") == []


@pytest.mark.parametrize(
    "text, rule",
    [
        ("喂，您好，请讲", "wei"),
        ("喂？还在吗？", "wei"),
        ("好的，喂喂，说话呀", "wei"),
    ],
)
def test_wei_as_a_call_is_forbidden(checker, text, rule):
    assert rule in rules_in(checker, text)


@pytest.mark.parametrize(
    "text",
    [
        # 喂 as feeding, a likeness, an obligation, words quoted from a card or a title
        "这款幼猫奶粉每天分四到五次喂，每次按体重冲调。",
        "这件羽绒服穿上轻得好像没穿一样，整件只有580克。",
        "运费应该由我们承担，我已经为您申请了退款。",
        "贺卡上会印“祝你生日快乐”，字体您可以选。",
        "这本《你问我，我问谁》是绘本，适合三到六岁。",
        # a product fact, not a refusal
        "这款面霜没有香精，也没有酒精。",
    ],
)
def test_literal_matches_in_compliant_replies_are_not_violations(checker, text):
    assert rules_in(checker, text) == set()
