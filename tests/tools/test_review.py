"""`kefu review list` on a tracker store and a desk store built here: what counts as a
fallback, a doubtful guess, a bot failure and a correction; grouping; the options."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kefu.store.conversations import ConversationStore
from kefu.store.reviews import ReviewStore
from kefu.store.sql import open_database
from kefu.tools.review import (
    REASONS,
    ReviewError,
    Sources,
    collect,
    parse_since,
    table,
    tracker_url,
)

ROOT = Path(__file__).resolve().parents[2]
KEFU = str(Path(sys.executable).parent / "kefu")
NOW = datetime.now(timezone.utc)
# Rasa's SQLTrackerStore table (rasa/core/tracker_store.py, SQLEvent).
EVENTS = (
    "CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255) NOT NULL, "
    "type_name VARCHAR(255) NOT NULL, timestamp FLOAT, intent_name VARCHAR(255), "
    "action_name VARCHAR(255), data TEXT)"
)


class Tracker:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path)
        self.db.execute(EVENTS)

    def user(self, sender, text, intent, confidence, at, ranking=None, metadata=None):
        ranking = ranking or [{"name": intent, "confidence": confidence}]
        data = {
            "event": "user",
            "timestamp": at.timestamp(),
            "text": text,
            "parse_data": {
                "text": text,
                "intent": {"name": intent, "confidence": confidence},
                "intent_ranking": ranking,
                "entities": [],
            },
            "metadata": metadata or {},
        }
        self._add(sender, "user", at, intent, None, data)

    def action(self, sender, name, at):
        data = {"event": "action", "timestamp": at.timestamp(), "name": name}
        self._add(sender, "action", at, None, name, data)

    def bot(self, sender, text, at):
        self._add(
            sender,
            "bot",
            at,
            None,
            None,
            {"event": "bot", "timestamp": at.timestamp(), "text": text},
        )

    def _add(self, sender, kind, at, intent, action, data):
        self.db.execute(
            "INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (sender, kind, at.timestamp(), intent, action, json.dumps(data, ensure_ascii=False)),
        )
        self.db.commit()


@pytest.fixture
def sources(tmp_path) -> Sources:
    return Sources(f"sqlite:///{tmp_path / 'kefu.db'}", f"sqlite:///{tmp_path / 'tracker.db'}")


@pytest.fixture
def tracker(tmp_path) -> Tracker:
    return Tracker(tmp_path / "tracker.db")


def fallback_ranking(best: str, confidence: float):
    return [{"name": "nlu_fallback", "confidence": 0.25}, {"name": best, "confidence": confidence}]


async def test_fallbacks_doubts_and_ids_folded(tracker, sources):
    t = NOW - timedelta(minutes=30)
    tracker.user("a", "EXTERNAL: greet", "greet", 1.0, t, metadata={"is_external": True})
    tracker.user("a", "訂單2023112500123456到哪了？", "query_order", 0.41, t)
    tracker.user(
        "b", "订单 2023-1125-9999-9999 到哪了", "query_order", 0.45, t + timedelta(minutes=1)
    )
    tracker.user("b", "好的", "affirm", 0.97, t + timedelta(minutes=2))
    tracker.user(
        "a",
        "zqx blorp",
        "nlu_fallback",
        0.25,
        t + timedelta(minutes=3),
        ranking=fallback_ranking("insult", 0.19),
    )
    tracker.user("c", "随便说点什么", "greet", 0.8, t + timedelta(minutes=4))
    tracker.action("c", "action_default_fallback", t + timedelta(minutes=4, seconds=1))
    tracker.user("c", "今天天气怎么样", "out_of_scope", 0.9, t + timedelta(minutes=5))

    items = await collect(sources)
    assert [(i.count, i.reasons) for i in items][0] == (2, ["low_confidence"])
    first = items[0].as_json()
    assert set(first) == {
        "text",
        "count",
        "predicted",
        "confidence",
        "last_seen",
        "conversation_ids",
    }
    # Traditional and simplified, with and without the grouping dashes, are one text.
    assert first["predicted"] == "query_order" and first["confidence"] == pytest.approx(0.43)
    assert first["conversation_ids"] == ["b", "a"]  # most recent first
    texts = {i.text: i for i in items}
    assert "好的" not in texts and not any(t.startswith("EXTERNAL") for t in texts)
    assert texts["zqx blorp"].predicted == "insult"  # the best real guess under the fallback
    assert texts["zqx blorp"].confidence == pytest.approx(0.19)
    assert texts["随便说点什么"].reasons == ["fallback"]  # the dialogue fell back
    assert texts["今天天气怎么样"].reasons == ["fallback"]  # the bot said it cannot help

    only = await collect(sources, reasons=["fallback"])
    assert {i.text for i in only} == {"zqx blorp", "随便说点什么", "今天天气怎么样"}
    recent = await collect(sources, since=t + timedelta(minutes=2, seconds=30))
    assert {i.text for i in recent} == {"zqx blorp", "随便说点什么", "今天天气怎么样"}
    strict = await collect(sources, low_confidence=0.99)
    assert "好的" in {i.text for i in strict}


async def test_bot_failures_and_corrections_come_from_the_desk(tracker, sources):
    store = ConversationStore(open_database(sources.database_url))
    conversation = await store.create_conversation("d1", "hash")
    await store.add_message("d1", "visitor", "你好")
    said = await store.add_message("d1", "visitor", "我的东西坏了你们管不管")
    tracker.user("d1", "你好", "greet", 0.99, said.created_at - timedelta(seconds=5))
    tracker.user(
        "d1", "我的东西坏了你们管不管", "complain", 0.8, said.created_at + timedelta(seconds=1)
    )
    await store.transition(
        conversation.id,
        ("bot",),
        status="queued",
        reason="bot_failure",
        waiting_since=datetime.now(timezone.utc),
    )
    other = await store.add_message("d1", "visitor", "退钱")
    await store.close()
    reviews = ReviewStore(open_database(sources.database_url))
    await reviews.correct("d1", other.seq, other.text, "request_return", "demo")
    await reviews.correct("d1", other.seq, other.text, "demand_compensation", "demo")  # replaces
    await reviews.close()

    items = {i.text: i for i in await collect(sources)}
    failed = items["我的东西坏了你们管不管"]
    assert failed.reasons == ["bot_failure"]
    assert (failed.predicted, failed.confidence) == ("complain", 0.8)  # Rasa's guess for it
    assert failed.occurrences[0].seq == said.seq
    corrected = items["退钱"]
    assert corrected.reasons == ["corrected"] and corrected.intended == ["demand_compensation"]
    assert corrected.predicted is None  # Rasa never saw it in this made-up store
    assert "你好" not in items
    assert {i.text for i in await collect(sources, reasons=["corrected"])} == {"退钱"}


async def test_nothing_yet_is_an_empty_inbox_and_creates_no_file(tmp_path):
    sources = Sources(f"sqlite:///{tmp_path / 'none.db'}", f"sqlite:///{tmp_path / 'no.db'}")
    assert await collect(sources) == []
    assert not list(tmp_path.iterdir())
    assert table([]).startswith("nothing to review")


def test_since_accepts_dates_times_and_spans():
    assert parse_since("2026-12-01") == datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert parse_since("2026-12-01T08:00+08:00") == datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert parse_since("7d", NOW) == NOW - timedelta(days=7)
    assert parse_since("24h", NOW) == NOW - timedelta(hours=24)
    assert parse_since(None) is None
    with pytest.raises(ReviewError):
        parse_since("last tuesday")


def test_the_tracker_store_comes_from_the_endpoints(tmp_path):
    assert tracker_url(ROOT / "endpoints.yml") == f"sqlite:///{ROOT / 'var/rasa-tracker.db'}"
    scaled = tracker_url(ROOT / "endpoints.scaled.yml", env={"KEFU_PG_PASSWORD": ""})
    assert scaled == "postgresql://postgres@127.0.0.1:5432/test"
    memory = tmp_path / "endpoints.yml"
    memory.write_text("action_endpoint:\n  url: http://x\n")
    assert tracker_url(memory) is None


async def test_the_table_is_readable(tracker, sources):
    tracker.user(
        "a", "zqx blorp " * 10, "nlu_fallback", 0.25, NOW, ranking=fallback_ranking("insult", 0.19)
    )
    lines = table(await collect(sources)).splitlines()
    assert lines[0].split() == [
        "count",
        "reason",
        "predicted",
        "conf",
        "last",
        "seen",
        "(UTC)",
        "chats",
        "text",
    ]
    assert lines[2].split()[:4] == ["1", "fallback", "insult", "0.19"] and lines[2].endswith("…")


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KEFU, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_the_command_prints_json_lines_and_refuses_bad_options(tracker, sources, tmp_path):
    tracker.user(
        "a", "zqx blorp", "nlu_fallback", 0.25, NOW, ranking=fallback_ranking("insult", 0.19)
    )
    args = ["--database", sources.database_url, "--tracker", str(sources.tracker_url)]
    listed = run("review", "list", "--json", *args)
    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.splitlines()
    assert json.loads(line)["text"] == "zqx blorp"
    assert "zqx blorp" in run("review", "list", *args).stdout
    for bad in (["--since", "yesterday"], ["--reason", "nope"]):
        refused = run("review", "list", *args, *bad)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    broken = tmp_path / "broken.db"
    broken.write_text("not a database")
    failed = run(
        "review", "list", "--database", sources.database_url, "--tracker", f"sqlite:///{broken}"
    )
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1


def test_reasons_are_the_contract():
    assert REASONS == ("fallback", "low_confidence", "bot_failure", "corrected")


def test_a_shop_question_is_its_topic_with_the_lower_confidence():
    from kefu.tools.review import prediction

    parse = {
        "intent": {"name": "faq", "confidence": 0.61},
        "response_selector": {
            "faq": {"response": {"intent_response_key": "faq/shipping_fee", "confidence": 0.41}}
        },
    }
    assert prediction(parse) == ("faq/shipping_fee", 0.41)
    parse["response_selector"]["faq"]["response"]["confidence"] = 0.9
    assert prediction(parse) == ("faq/shipping_fee", 0.61)
    assert prediction({"intent": {"name": "greet", "confidence": 0.9}}) == ("greet", 0.9)
    fallback = {
        "intent": {"name": "nlu_fallback", "confidence": 0.25},
        "intent_ranking": [
            {"name": "nlu_fallback", "confidence": 0.25},
            {"name": "urge", "confidence": 0.2},
        ],
    }
    assert prediction(fallback) == ("urge", 0.2)
    assert prediction({}) == (None, None)
