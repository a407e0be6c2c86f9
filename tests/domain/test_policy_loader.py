"""The policy loader validates and says where a problem is."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kefu.domain.policy import PolicyError, load_policy

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def policy_copy(tmp_path: Path) -> Path:
    # Same depth as the real policy/ so seed references resolve the same way.
    target = tmp_path / "a" / "policy"
    shutil.copytree(ROOT / "policy", target)
    return target


def edit(directory: Path, old: str, new: str) -> None:
    path = directory / "phrasing.yml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(directory: Path, needle: str) -> int:
    lines = (directory / "phrasing.yml").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def test_shipped_policy_loads(policy):
    assert policy.brand.name
    assert policy.greeting_at(__import__("datetime").time(14, 0)) == "下午好"


def test_empty_brand_name_names_file_line_and_key(policy_copy):
    edit(policy_copy, "name: 乐购", 'name: ""')
    with pytest.raises(PolicyError) as error:
        load_policy(policy_copy)
    message = str(error.value)
    line = line_of(policy_copy, 'name: ""')
    assert message.startswith(f"{policy_copy / 'phrasing.yml'}:{line}:")
    assert "brand.name" in message and "non-empty string" in message


def test_unknown_time_zone_is_reported(policy_copy):
    edit(policy_copy, "timezone: Asia/Shanghai", "timezone: Mars/Olympus")
    with pytest.raises(PolicyError, match=r"brand\.timezone: unknown time zone 'Mars/Olympus'"):
        load_policy(policy_copy)


def test_bad_time_of_day_is_reported(policy_copy):
    edit(policy_copy, 'from: "05:00"', 'from: "five"')
    with pytest.raises(PolicyError, match=r"greetings\[0\]\.from: 'five' is not a time of day"):
        load_policy(policy_copy)


def test_missing_section_is_reported(policy_copy):
    edit(policy_copy, "brand:", "brandx:")
    with pytest.raises(PolicyError, match="missing required key 'brand'"):
        load_policy(policy_copy)


def test_invalid_yaml_gives_a_line(policy_copy):
    edit(policy_copy, "brand:", "brand: [unclosed")
    with pytest.raises(PolicyError, match=r"phrasing\.yml:\d+: invalid YAML"):
        load_policy(policy_copy)


def test_phrase_must_name_an_existing_seed(policy_copy):
    seeds = policy_copy.parents[1] / "shared" / "seeds"  # ../../shared/seeds
    seeds.mkdir(parents=True)
    for name in {r.source for r in load_policy(ROOT / "policy").rules} | {
        "002_d3500aabb1c49be0.txt"
    }:
        (seeds / name).write_text("seed", encoding="utf-8")
    load_policy(policy_copy)  # every named seed exists: fine
    path = policy_copy / "phrasing.yml"
    text = path.read_text(encoding="utf-8")
    marker = "safe_fallback:"
    head, tail = text.split(marker, 1)
    path.write_text(
        head + marker + tail.replace("002_d3500aabb1c49be0.txt", "999_missing.txt", 1),
        encoding="utf-8",
    )
    with pytest.raises(
        PolicyError, match=r"phrases\.safe_fallback\.source: no seed file '999_missing.txt'"
    ):
        load_policy(policy_copy)


def test_a_missing_safe_fallback_is_reported(policy_copy):
    edit(policy_copy, "  safe_fallback:", "  other_scene:")
    with pytest.raises(PolicyError, match="missing required phrase 'safe_fallback'"):
        load_policy(policy_copy)


def test_a_broken_rule_regex_names_its_line(policy_copy):
    path = policy_copy / "rules.yml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('"绝对不可能"', '"绝对(不可能"'), encoding="utf-8")
    line = next(
        i
        for i, t in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "绝对(不可能" in t
    )
    with pytest.raises(PolicyError, match=rf"rules\.yml:{line}: forbidden\[\d+\]\.patterns\[\d+\]"):
        load_policy(policy_copy)


def test_duplicate_rule_ids_are_reported(policy_copy):
    path = policy_copy / "rules.yml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("- id: seems", "- id: wei"), encoding="utf-8")
    with pytest.raises(PolicyError, match="duplicate rule id 'wei'"):
        load_policy(policy_copy)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path)


def test_a_greeting_without_a_source_is_reported(policy_copy):
    edit(policy_copy, ", text: 早上好, source: 002_d3500aabb1c49be0.txt}", ", text: 早上好}")
    with pytest.raises(PolicyError, match=r"greetings\[0\]: missing required key 'source'"):
        load_policy(policy_copy)


def edit_file(directory: Path, name: str, old: str, new: str) -> int:
    """Replace once in policy/<name>; the line of the edit."""
    path = directory / name
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


@pytest.mark.parametrize(
    "name, old, new, message",
    [
        (
            "escalation.yml",
            "  bot_failure:\n    priority: 30",
            "  robot_failure:\n    priority: 30",
            "reasons.robot_failure: unknown reason code",
        ),
        (
            "escalation.yml",
            "phrase: handoff_legal",
            "phrase: handoff_lawyers",
            "reasons.legal_media.phrase: no phrase 'handoff_lawyers' in phrasing.yml",
        ),
        (
            "escalation.yml",
            "intents: [insult]",
            "intents: [insult, threaten]",
            "'threaten' is already legal_media",
        ),
        (
            "escalation.yml",
            'close: "18:30"',
            'close: "08:00"',
            "working_hours.close: must be later",
        ),
        (
            "escalation.yml",
            "weekdays: [1, 2, 3, 4, 5, 6, 7]",
            "weekdays: [0, 8]",
            "working_hours.weekdays: must be a list of ISO weekdays",
        ),
        (
            "escalation.yml",
            "anger_threshold: 1.2",
            "anger_threshold: high",
            "tone.anger_threshold: must be a number",
        ),
        (
            "escalation.yml",
            "    shouting: 0.2",
            "    whispering: 0.2",
            "tone.weights.whispering: unknown",
        ),
        (
            "escalation.yml",
            "'第[二三四五六七八九十几两0-9]+次'",
            "'第[次'",
            "invalid regular expression",
        ),
        (
            "service.yml",
            "after_seconds: 60",
            "after_seconds: -1",
            "idle.after_seconds: must be a number",
        ),
        (
            "service.yml",
            "window_days: 7",
            "window_days: seven",
            "returns.window_days: must be a number",
        ),
    ],
)
def test_escalation_and_service_mistakes_name_file_line_and_key(
    policy_copy, name, old, new, message
):
    line = edit_file(policy_copy, name, old, new)
    with pytest.raises(PolicyError) as error:
        load_policy(policy_copy)
    assert message in str(error.value)
    assert str(error.value).startswith(f"{policy_copy / name}:")
    assert error.value.line is not None and abs(error.value.line - line) <= 3


def test_all_eight_reason_codes_are_required(policy_copy):
    path = policy_copy / "escalation.yml"
    text = path.read_text(encoding="utf-8")
    start = text.index("  anger:\n")
    end = text.index("  compensation:\n")
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    with pytest.raises(PolicyError, match="missing reason 'anger'"):
        load_policy(policy_copy)


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("  C: 30", "  C: 0", "tone_model.C: must be a number"),
        ("  C: 30", "  c: 30", "tone_model.c: unknown key"),
        ("char_ngrams: [1, 3]", "char_ngrams: [3, 1]", "tone_model.char_ngrams: must be"),
        ("sublinear_tf: true", "sublinear_tf: sometimes", "tone_model.sublinear_tf: must be"),
    ],
)
def test_tone_model_settings_are_checked(policy_copy, old, new, message):
    line = edit_file(policy_copy, "rules.yml", old, new)
    with pytest.raises(PolicyError) as error:
        load_policy(policy_copy)
    assert message in str(error.value)
    assert error.value.line is not None and abs(error.value.line - line) <= 3


def test_settling_words_must_name_known_reasons(policy_copy):
    old = "reasons: [legal_media, supervisor, compensation]"
    line = edit_file(policy_copy, "risk.yml", old, "reasons: [legal, anger]")
    with pytest.raises(PolicyError, match=rf"risk\.yml:{line}: settled\[0\]\.reasons"):
        load_policy(policy_copy)


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("always: [safety]", "always: [danger]", r"story_words\.always"),
        (
            "intents: [faq, out_of_scope,",
            "intents: [threaten, out_of_scope,",
            r"story_words\.intents",
        ),
    ],
)
def test_story_words_are_checked(policy_copy, old, new, message):
    line = edit_file(policy_copy, "escalation.yml", old, new)
    with pytest.raises(PolicyError, match=rf"escalation\.yml:{line}: {message}"):
        load_policy(policy_copy)


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("  tk: 退款", "  tk: 退款了", "shorthand.tk: the meaning needs exactly 2 characters"),
        ("  tk: 退款", "  t1: 退款", "shorthand.t1: a key is 2-4 lower-case latin letters"),
    ],
)
def test_shorthand_mistakes_name_file_line_and_key(policy_copy, old, new, message):
    line = edit_file(policy_copy, "shorthand.yml", old, new)
    with pytest.raises(PolicyError) as err:
        load_policy(policy_copy)
    assert f"shorthand.yml:{line}" in str(err.value)
    assert message in str(err.value)


def test_no_shorthand_file_means_no_shorthand(policy_copy):
    (policy_copy / "shorthand.yml").unlink()
    assert load_policy(policy_copy).shorthand == {}


def test_asides_name_known_reasons(policy_copy):
    line = edit_file(
        policy_copy,
        "risk.yml",
        "  reasons: [abuse, legal_media, supervisor, customer_request]\n  pairs:",
        "  reasons: [abuse, rudeness]\n  pairs:",
    )
    with pytest.raises(PolicyError) as err:
        load_policy(policy_copy)
    assert f"risk.yml:{line}" in str(err.value) and "quoted.reasons" in str(err.value)


def test_a_broken_grounds_pattern_names_file_line_and_key(policy_copy):
    old = "      - '(?:孩子|小孩|宝宝|"
    line = edit_file(policy_copy, "risk.yml", old, "      - '(?:孩子|小孩|(宝宝|")
    with pytest.raises(PolicyError) as err:
        load_policy(policy_copy)
    assert f"risk.yml:{line}" in str(err.value) and "grounds" in str(err.value)
