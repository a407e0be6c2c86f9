"""`kefu intent add` and `kefu intent check` on a copy of the project."""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kefu.domain.policy import load_policy

ROOT = Path(__file__).resolve().parents[2]
KEFU = str(Path(sys.executable).parent / "kefu")
RASA = str(Path(sys.executable).parent / "rasa")
EXAMPLES = Path(__file__).parent / "examples"
ANSWER = "好的，我来为您预约安装，先帮您查一下订单。"
GIFT = "{brand}的商品都可以免费礼品包装，下单时在订单备注里写明礼品包装和贺卡内容即可。"


@pytest.fixture
def home(tmp_path) -> Path:
    home = tmp_path / "project"
    home.mkdir()
    for name in ("domain.yml", "config.yml", "credentials.yml", "endpoints.yml"):
        shutil.copy(ROOT / name, home / name)
    for folder in ("data", "policy", "actions", "tests/nlu", "tests/stories", "tests/faq"):
        shutil.copytree(ROOT / folder, home / folder, ignore=shutil.ignore_patterns("sealed*"))
    return home


def kefu(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KEFU, "intent", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, "KEFU_HOME": str(home)},
    )


def added(home: Path) -> dict:
    """Lines added per file of the copy (new files whole); no line may be removed."""
    out = {}
    for path in sorted(p for p in home.rglob("*") if p.is_file() and p.suffix in (".yml", ".txt")):
        original = ROOT / path.relative_to(home)
        old = original.read_text("utf-8").splitlines() if original.exists() else []
        new = path.read_text("utf-8").splitlines()
        if old != new:
            diff = list(difflib.ndiff(old, new))
            assert not [d for d in diff if d.startswith("- ")], path
            out[str(path.relative_to(home))] = [d[2:] for d in diff if d.startswith("+ ")]
    return out


def test_a_new_intent_with_an_answer_gets_everything_make_test_needs(home, domain):
    result = kefu(
        home,
        "add",
        "book_installation",
        "--topic",
        "orders",
        "--examples",
        str(EXAMPLES / "book_installation.txt"),
        "--answer",
        ANSWER,
    )
    assert result.returncode == 0, result.stderr
    files = added(home)
    assert set(files) == {
        "domain.yml",
        "data/nlu/orders.yml",
        "data/rules/orders.yml",
        "tests/nlu/test_nlu.yml",
        "tests/stories/test_added_intents.yml",
    }
    assert files["domain.yml"] == [
        "  - book_installation",
        "  utter_book_installation:",
        f'    - text: "{ANSWER}"',
    ]
    loaded = yaml.safe_load((home / "domain.yml").read_text("utf-8"))
    assert "book_installation" in loaded["intents"]
    assert loaded["responses"]["utter_book_installation"] == [{"text": ANSWER}]
    nlu = yaml.safe_load((home / "data/nlu/orders.yml").read_text("utf-8"))["nlu"]
    [block] = [b for b in nlu if b.get("intent") == "book_installation"]
    assert len(block["examples"].splitlines()) == 44  # 55, every fifth held out
    held = yaml.safe_load((home / "tests/nlu/test_nlu.yml").read_text("utf-8"))["nlu"]
    [held_block] = [b for b in held if b.get("intent") == "book_installation"]
    assert len(held_block["examples"].splitlines()) == 11
    rules = yaml.safe_load((home / "data/rules/orders.yml").read_text("utf-8"))["rules"]
    assert rules[-1]["steps"] == [
        {"intent": "book_installation"},
        {"action": "utter_book_installation"},
    ]
    story = yaml.safe_load((home / "tests/stories/test_added_intents.yml").read_text("utf-8"))
    steps = story["stories"][0]["steps"]
    assert (
        steps[0]["intent"] == "book_installation"
        and steps[0]["user"].strip() in (held_block["examples"])
    )

    # What make validate runs, on the copy.
    validate = subprocess.run(
        [RASA, "data", "validate", "--fail-on-warnings", "--quiet"],
        capture_output=True,
        text=True,
        cwd=home,
        timeout=600,
        env={**os.environ, "KEFU_HOME": str(home)},
    )
    assert validate.returncode == 0, validate.stdout[-2000:] + validate.stderr[-2000:]


def test_a_flow_intent_opens_its_form(home):
    result = kefu(
        home,
        "add",
        "book_installation",
        "--topic",
        "orders",
        "--examples",
        str(EXAMPLES / "book_installation.txt"),
        "--flow",
    )
    assert result.returncode == 0, result.stderr
    rules = yaml.safe_load((home / "data/rules/orders.yml").read_text("utf-8"))["rules"]
    assert rules[-1]["steps"] == [
        {"intent": "book_installation"},
        {"action": "order_form"},
        {"active_loop": "order_form"},
    ]
    story = yaml.safe_load((home / "tests/stories/test_added_intents.yml").read_text("utf-8"))
    assert story["stories"][0]["steps"][-1] == {"slot_was_set": [{"requested_slot": "order_id"}]}
    assert "utter_book_installation" not in (home / "domain.yml").read_text("utf-8")


def test_a_new_faq_topic_goes_to_the_policy_file(home):
    result = kefu(
        home,
        "add",
        "gift_wrap",
        "--examples",
        str(EXAMPLES / "gift_wrap.txt"),
        "--faq",
        "--answer",
        GIFT,
    )
    assert result.returncode == 0, result.stderr
    assert set(added(home)) == {
        "policy/faq.yml",
        "tests/faq/dev_questions_gift_wrap.yml",
        "tests/stories/test_added_intents.yml",
    }
    topic = load_policy(home / "policy").faq["gift_wrap"]
    assert topic.answer == GIFT and len(topic.examples) == 16
    questions = yaml.safe_load((home / "tests/faq/dev_questions_gift_wrap.yml").read_text("utf-8"))
    assert len(questions["questions"]) == 4
    assert {q["lang"] for q in questions["questions"]} <= {"simplified", "traditional"}
    # More examples for the topic later: no answer this time.
    more = home / "more.txt"
    more.write_text("\n".join(f"第{i}个礼物能包一下吗" for i in range(1, 6)), encoding="utf-8")
    again = kefu(home, "add", "gift_wrap", "--examples", str(more), "--faq", "gift_wrap")
    assert again.returncode == 0, again.stderr
    assert len(load_policy(home / "policy").faq["gift_wrap"].examples) == 20


@pytest.mark.parametrize(
    "args, why",
    [
        (["greet", "--topic", "basics", "--answer", ANSWER], "contract intent"),
        (["faq", "--topic", "basics", "--answer", ANSWER], "contract intent"),
        (["Book-It", "--topic", "basics", "--answer", ANSWER], "bad intent name"),
        (["book_installation", "--answer", ANSWER], "--topic"),
        (["book_installation", "--topic", "orders"], "--answer"),
        (["book_installation", "--topic", "orders", "--flow", "nope_form"], "not a form"),
        (["book_installation", "--topic", "orders", "--faq", "--flow"], "choose one"),
        (["book_installation", "--topic", "orders", "--answer", "什么？你说啥"], "phrasing lint"),
        (["invoice", "--faq", "--answer", GIFT], "exists"),
        (["gift_wrap", "--faq"], "--answer"),
    ],
)
def test_refusals_change_nothing(home, args, why):
    result = kefu(home, "add", *args, "--examples", str(EXAMPLES / "book_installation.txt"))
    assert result.returncode == 2, result.stdout
    assert why in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert added(home) == {}


def test_examples_must_be_new_and_enough(home, tmp_path):
    few = tmp_path / "few.txt"
    few.write_text("\n".join(f"能不能第{i}天来装" for i in range(30)), encoding="utf-8")
    result = kefu(
        home, "add", "book_installation", "--topic", "orders", "--examples", str(few), "--flow"
    )
    assert result.returncode == 2 and "at least 50" in result.stderr
    lines = (EXAMPLES / "book_installation.txt").read_text("utf-8").splitlines()
    known = tmp_path / "known.txt"
    known.write_text("\n".join(lines + ["查订单"]), encoding="utf-8")
    result = kefu(
        home, "add", "book_installation", "--topic", "orders", "--examples", str(known), "--flow"
    )
    assert result.returncode == 2 and "already an example of query_order" in result.stderr
    held = tmp_path / "held.txt"
    held.write_text("\n".join(lines + ["你好，请问有人吗"]), encoding="utf-8")
    result = kefu(
        home, "add", "book_installation", "--topic", "orders", "--examples", str(held), "--flow"
    )
    assert result.returncode == 2 and "held out" in result.stderr
    missing = kefu(
        home, "add", "x_y", "--topic", "orders", "--examples", str(tmp_path / "no"), "--flow"
    )
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    assert added(home) == {}


def test_check_reports_cross_validated_confusion(home):
    result = kefu(
        home,
        "check",
        "book_installation",
        "--examples",
        str(EXAMPLES / "book_installation.txt"),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["examples"] == 55 and report["folds"] == 5
    assert 0.8 <= report["f1"] <= 1.0 and report["verdict"] == "separable"
    assert len(report["nearest"]) == 5 and report["nearest"][0]["similarity"] > 0
    assert {"taken_for", "mistaken_for_it", "recall", "precision"} <= set(report)
    text = kefu(home, "check", "urge")
    assert text.returncode == 0 and "5-fold cross-validation" in text.stdout
    assert "char_linear.py" in text.stdout
    unknown = kefu(home, "check", "nothing_like_it")
    assert unknown.returncode == 2 and "--examples" in unknown.stderr
