"""`make eval`'s last step: each figure against the committed reports, regressions marked."""

from __future__ import annotations

import json
from pathlib import Path

from kefu.tools import evaluation_compare as compare

ROOT = Path(__file__).resolve().parents[2]


def reports(
    f1_query: float, needless: float, fpr: float, extra_intent: bool = False, dev_size: int = 100
):
    intents = {
        "query_order": {"f1-score": f1_query, "support": 12},
        "greet": {"f1-score": 1.0, "support": 12},
        "macro avg": {"f1-score": 0.9, "support": 24},
    }
    if extra_intent:
        intents["book_installation"] = {"f1-score": 0.95, "support": 11}
    files = {
        "reports/nlu/intent_report.json": intents,
        "reports/nlu/summary.json": {
            "intent_macro_f1": (f1_query + 1.0) / 2,
            "intent_accuracy": 0.95,
            "entities": {"order_id": {"f1": 1.0}},
            "errors": [
                {"text": "a", "gold": "query_order", "predicted": "faq"},
                {"text": "b", "gold": "query_order", "predicted": "faq"},
                {"text": "c", "gold": "greet", "predicted": "nlu_fallback"},
            ],
        },
        "reports/judgement/summary.json": [
            {
                "split": "dev",
                "single_messages": {
                    "messages": dev_size,
                    "recall": 0.95,
                    "needless_rate": needless,
                    "misses": ["x"],
                },
                "conversations": {"recall": 1.0},
            }
        ],
        "reports/faq/summary.json": {"dev": {"on_topic_rate": 0.9, "opened_a_form": 2}},
        "reports/phrasing/summary.json": {
            "recall": 1.0,
            "false_positive_rate": fpr,
            "replies": {"dev": {"recall": 0.99, "false_positive_rate": 0.01}},
        },
    }
    return lambda relative: json.dumps(files[relative]) if relative in files else None


def by_name(figures):
    return {(f.section, f.name): f for f in figures}


def test_changes_are_marked_by_direction(tmp_path):
    (tmp_path / "reports").mkdir()
    before = reports(0.90, 0.02, 0.01)
    after = reports(0.95, 0.04, 0.00, extra_intent=True)
    figures, text = compare.run(tmp_path / "reports", before, after, "the test's baseline")
    f = by_name(figures)
    assert f[("intent F1", "query_order")].mark == compare.IMPROVED
    assert f[("intent F1", "query_order")].change == 0.95 - 0.90
    assert f[("intent F1", "book_installation")].mark == "new"
    assert f[("intent F1", "greet")].mark == ""
    needless = f[("hand-over judgement (dev)", "messages: needless hand-overs")]
    assert needless.mark == compare.REGRESSION  # higher is worse
    assert f[("phrasing checker (labelled)", "false-positive rate")].mark == compare.IMPROVED
    assert "1 regression(s)" in text
    assert (
        "- hand-over judgement (dev): messages: needless hand-overs 0.020 → 0.040 (+0.020)" in text
    )
    assert "| `book_installation` | 0.950 | – | 11 | – | new |" in text
    saved = json.loads((tmp_path / "reports/changes.json").read_text("utf-8"))
    assert [s for s in saved if s["regression"]] == [needless.as_dict()]
    png = tmp_path / "reports/nlu/biggest_confusions.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_split_that_grew_is_not_compared(tmp_path):
    (tmp_path / "reports").mkdir()
    before = reports(0.90, 0.02, 0.01)
    after = reports(0.90, 0.04, 0.01, dev_size=120)  # new dev messages, harder ones
    figures, text = compare.run(tmp_path / "reports", before, after, "the test's baseline")
    needless = by_name(figures)[("hand-over judgement (dev)", "messages: needless hand-overs")]
    assert needless.mark == compare.RESIZED
    assert "0 regression(s)" in text


def test_the_biggest_confusions_count_kefus_own_errors():
    summary = json.loads(reports(0.9, 0.0, 0.0)("reports/nlu/summary.json"))
    assert compare.biggest_confusions(summary) == [
        ("query_order", "faq", 2),
        ("greet", "nlu_fallback", 1),
    ]


def test_no_committed_report_makes_every_figure_new(tmp_path):
    (tmp_path / "reports").mkdir()
    figures, text = compare.run(tmp_path / "reports", lambda _: None, reports(0.9, 0.0, 0.0))
    assert {f.mark for f in figures} == {"new"}
    assert "no committed report yet" in text


def test_the_baseline_is_the_last_commit():
    read = compare.committed(ROOT)
    committed = json.loads(read("reports/nlu/summary.json") or "{}")
    assert "intent_macro_f1" in committed
    assert read("reports/no/such/file.json") is None
