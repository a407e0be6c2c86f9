"""`kefu review label`: examples appended as text to the right file, with entities
annotated, comments and order kept; refusals with exit code 2 and one line."""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kefu.tools import nludata
from kefu.tools.nludata import DataError, TrainingData, annotate, clean_example, fold

ROOT = Path(__file__).resolve().parents[2]
KEFU = str(Path(sys.executable).parent / "kefu")


@pytest.fixture
def home(tmp_path) -> Path:
    home = tmp_path / "project"
    home.mkdir()
    shutil.copy(ROOT / "domain.yml", home / "domain.yml")
    for folder in ("data", "policy", "tests/nlu"):
        shutil.copytree(ROOT / folder, home / folder)
    return home


def label(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KEFU, "review", "label", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "KEFU_HOME": str(home)},
    )


def changed(home: Path) -> dict:
    """Every file of the copy that differs from the project, as (removed, added) lines."""
    out = {}
    for path in sorted(home.rglob("*.yml")):
        original = ROOT / path.relative_to(home)
        old, new = original.read_text("utf-8").splitlines(), path.read_text("utf-8").splitlines()
        if old != new:
            diff = list(difflib.ndiff(old, new))
            out[str(path.relative_to(home))] = (
                [d[2:] for d in diff if d.startswith("- ")],
                [d[2:] for d in diff if d.startswith("+ ")],
            )
    return out


def test_fold_treats_scripts_punctuation_and_ids_alike():
    assert fold("訂單 2023-1125-0012-3456 到哪了？") == fold("订单2099112599999999到哪了")
    assert fold("我的手机号是13800138000！") == fold("我的手机号是 13912345678")
    assert fold("Hello, 客服!!") == fold("hello客服")
    assert fold("[2023112500123456](order_id)到哪了") == fold("2023112500123456到哪了")
    assert fold("查订单") != fold("查物流")
    assert fold("？？？") == fold("???") == "???"  # punctuation alone still groups


def test_entities_are_annotated_the_way_the_data_does():
    assert (
        annotate("帮我查查2023112500123456这个单") == "帮我查查[2023112500123456](order_id)这个单"
    )
    assert annotate("JD20231118001到哪了") == "[JD20231118001](order_id)到哪了"
    assert annotate("我的手机号是13800138000") == "我的手机号是[13800138000](phone)"
    assert annotate("订单号13800138000") == "订单号[13800138000](order_id)"
    assert annotate("13800138000") == "[13800138000](phone)"
    assert annotate("没有号码") == "没有号码"


def test_the_cues_are_the_reconcilers():
    from kefu.rasa.nlu import entity_reconciler

    assert nludata.PHONE_CUE.pattern == entity_reconciler._PHONE_CUE.pattern
    assert nludata.ORDER_CUE.pattern == entity_reconciler._ORDER_CUE.pattern
    assert nludata.CUE_WINDOW == entity_reconciler._CUE_WINDOW
    entities = yaml.safe_load((ROOT / "data/nlu/entities.yml").read_text("utf-8"))["nlu"]
    [phone] = [e for e in entities if e.get("regex") == "phone"]
    assert nludata.PHONE.pattern in phone["examples"]


def test_clean_example_refuses_what_is_not_one_line_of_text():
    assert clean_example("  你好\t 客服 \n") == "你好 客服"
    for bad in ("", "   ", "/greet", "看[这个](order_id)", "x" * 501):
        with pytest.raises(DataError):
            clean_example(bad)


def test_labelling_appends_to_the_intents_file_keeping_comments_and_order(home):
    before = (home / "data/nlu/orders.yml").read_text("utf-8")
    result = label(home, "--text", "我的单子2023112500123456咋还没动静", "--intent", "query_order")
    assert result.returncode == 0, result.stderr
    assert "data/nlu/orders.yml:" in result.stdout
    after = (home / "data/nlu/orders.yml").read_text("utf-8")
    assert changed(home) == {
        "data/nlu/orders.yml": ([], ["    - 我的单子[2023112500123456](order_id)咋还没动静"])
    }
    # Inserted right after the intent's last example: everything else byte for byte.
    assert after.replace("    - 我的单子[2023112500123456](order_id)咋还没动静\n", "", 1) == before
    block = after.split("- intent: query_order", 1)[1].split("\n- intent:", 1)[0]
    assert "我的单子[2023112500123456](order_id)咋还没动静" in block
    data = yaml.safe_load(after)
    [query] = [b for b in data["nlu"] if b.get("intent") == "query_order"]
    assert query["examples"].rstrip().endswith("- 我的单子[2023112500123456](order_id)咋还没动静")


def test_refusals_exit_2_with_one_line_and_write_nothing(home):
    held_out = yaml.safe_load((ROOT / "tests/nlu/test_nlu.yml").read_text("utf-8"))["nlu"]
    text = held_out[0]["examples"].splitlines()[0][2:]
    cases = [
        ("held out", text, "greet"),
        ("held out", text.replace("，", "") + "！", "greet"),  # normalised compare
        ("unknown intent", "我想改个地址", "change_address"),
        ("duplicate", "查订单", "query_order"),
        ("duplicate", "查訂單！", "deny"),  # whatever the intent, and in either script
    ]
    for why, text_, intent in cases:
        result = label(home, "--text", text_, "--intent", intent)
        assert result.returncode == 2, (why, result.stdout)
        assert why in result.stderr and len(result.stderr.strip().splitlines()) == 1
    for args in (["--text", "你好"], ["--intent", "greet"], ["--text", "", "--intent", "greet"]):
        result = label(home, *args)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert changed(home) == {}


def test_a_new_intent_needs_new_and_a_topic_and_is_declared(home):
    assert label(home, "--text", "你们几点下班呀", "--intent", "ask_hours").returncode == 2
    no_topic = label(home, "--text", "你们几点下班呀", "--intent", "ask_hours", "--new")
    assert no_topic.returncode == 2 and "--topic" in no_topic.stderr
    result = label(
        home, "--text", "你们几点下班呀", "--intent", "ask_hours", "--new", "--topic", "basics"
    )
    assert result.returncode == 0, result.stderr
    assert changed(home) == {
        "data/nlu/basics.yml": (
            [],
            ["- intent: ask_hours", "  examples: |", "    - 你们几点下班呀"],
        ),
        "domain.yml": ([], ["  - ask_hours"]),
    }
    again = label(home, "--text", "周末你们还上班不", "--intent", "ask_hours")
    assert again.returncode == 0 and "data/nlu/basics.yml" in again.stdout
    assert "ask_hours" in TrainingData(home).domain_intents()


def test_shop_questions_go_to_the_faq_topic(home):
    result = label(home, "--text", "能开个发票不", "--intent", "faq/invoice")
    assert result.returncode == 0, result.stderr
    assert changed(home) == {"policy/faq.yml": ([], ["      - 能开个发票不"])}
    faq = yaml.safe_load((home / "policy/faq.yml").read_text("utf-8"))
    assert faq["topics"]["invoice"]["examples"][-1] == "能开个发票不"
    quoted = label(home, "--text", "发票: 能开吗", "--intent", "faq/invoice")
    assert quoted.returncode == 0, quoted.stderr
    faq = yaml.safe_load((home / "policy/faq.yml").read_text("utf-8"))
    assert faq["topics"]["invoice"]["examples"][-1] == "发票: 能开吗"


def test_a_file_is_labelled_all_or_nothing(home, tmp_path):
    batch = tmp_path / "batch.txt"
    lines = [
        "# from kefu review list --json, with the intents added",
        json.dumps(
            {"text": "快递咋还不动", "count": 3, "intent": "query_order"}, ensure_ascii=False
        ),
        "我要投诉你们的快递员\tcomplain",
        "",
        "查订单\tquery_order",
    ]
    batch.write_text("\n".join(lines), encoding="utf-8")
    refused = label(home, "--file", str(batch))
    assert refused.returncode == 2
    assert re.search(r"batch.txt:5: refused: duplicate", refused.stderr)
    assert "nothing written" in refused.stderr and changed(home) == {}
    kept = label(home, "--file", str(batch), "--keep-going")
    assert kept.returncode == 2 and kept.stdout.count("labelled") == 2
    added = changed(home)
    assert added["data/nlu/orders.yml"][1] == ["    - 快递咋还不动"]
    assert added["data/nlu/complaints.yml"][1] == ["    - 我要投诉你们的快递员"]
    batch.write_text("没有制表符的一行\n", encoding="utf-8")
    bad = label(home, "--file", str(batch))
    assert bad.returncode == 2 and "TEXT<TAB>INTENT" in bad.stderr
    missing = label(home, "--file", str(tmp_path / "none.txt"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
