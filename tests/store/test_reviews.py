"""What the review inbox reads from the desk's store and Rasa's tracker store, and the
agents' corrections: the same tests against SQLite and a real PostgreSQL (Rasa's
`events` table made here as Rasa's SQLTrackerStore makes it)."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import asyncpg
import pytest

from kefu.store.conversations import open_conversation_store, utcnow
from kefu.store.reviews import open_review_store
from kefu.tools.review import Sources, TrackerReader, collect

EVENTS = (
    "CREATE TABLE events (id {serial}, sender_id VARCHAR(255) NOT NULL, "
    "type_name VARCHAR(255) NOT NULL, timestamp FLOAT, intent_name VARCHAR(255), "
    "action_name VARCHAR(255), data TEXT)"
)


@pytest.fixture(params=["sqlite", "postgres"])
async def urls(request, tmp_path, pg_url):
    """(desk store URL, tracker store URL) and a function that adds a tracker event."""
    if request.param == "sqlite":
        desk, tracker = f"sqlite:///{tmp_path / 'kefu.db'}", tmp_path / "tracker.db"
        db = sqlite3.connect(tracker)
        db.execute(EVENTS.format(serial="INTEGER PRIMARY KEY"))

        async def add(*row):
            db.execute(
                "INSERT INTO events (sender_id, type_name, timestamp, intent_name, data) "
                "VALUES (?, ?, ?, ?, ?)",
                row,
            )
            db.commit()

        yield desk, f"sqlite:///{tracker}", add
        db.close()
        return
    schema = pg_url.split("search_path=")[1]
    admin = await asyncpg.connect(pg_url.split("?")[0])
    await admin.execute(f"SET search_path TO {schema}")
    await admin.execute(EVENTS.format(serial="SERIAL PRIMARY KEY"))

    async def add_pg(*row):
        await admin.execute(
            "INSERT INTO events (sender_id, type_name, timestamp, intent_name, data) "
            "VALUES ($1, $2, $3, $4, $5)",
            *row,
        )

    yield pg_url, pg_url, add_pg
    await admin.close()


def user_event(text, intent, confidence, at):
    data = {
        "event": "user",
        "timestamp": at.timestamp(),
        "text": text,
        "parse_data": {"intent": {"name": intent, "confidence": confidence}},
    }
    return ("user", at.timestamp(), intent, json.dumps(data, ensure_ascii=False))


async def test_the_inbox_reads_both_stores_on_either_database(urls):
    desk_url, tracker_url, add = urls
    store = open_conversation_store(desk_url)
    conversation = await store.create_conversation("conv-1", "hash")
    said = await store.add_message(conversation.id, "visitor", "我要的不是这个")
    await add(conversation.id, *user_event("我要的不是这个", "deny", 0.9, said.created_at))
    await add("conv-2", *user_event("zqx blorp", "nlu_fallback", 0.25, utcnow()))
    await store.transition(
        conversation.id,
        ("bot",),
        status="queued",
        reason="bot_failure",
        waiting_since=utcnow() + timedelta(seconds=1),
    )
    await store.close()
    reviews = open_review_store(desk_url)
    flagged = await reviews.correct(conversation.id, said.seq, said.text, "complain", "demo")
    again = await reviews.correct(conversation.id, said.seq, said.text, "request_return", "demo")
    assert (flagged.intent, again.intent) == ("complain", "request_return")
    [stored] = await reviews.corrections()
    assert (stored.seq, stored.intent, stored.agent) == (said.seq, "request_return", "demo")
    assert await reviews.corrections(utcnow() + timedelta(hours=1)) == []
    [failure] = await reviews.handed_over_for("bot_failure")
    assert failure["conversation_id"] == conversation.id
    assert (await reviews.message(conversation.id, said.seq)).text == "我要的不是这个"
    assert await reviews.message(conversation.id, 99) is None
    await reviews.close()

    turns = await TrackerReader(tracker_url).turns()
    assert [t.text for t in turns] == ["我要的不是这个", "zqx blorp"]
    items = {i.text: i for i in await collect(Sources(desk_url, tracker_url))}
    assert items["zqx blorp"].reasons == ["fallback"]
    mine = items["我要的不是这个"]
    assert mine.reasons == ["bot_failure", "corrected"] and mine.count == 1
    assert (mine.predicted, mine.intended) == ("deny", ["request_return"])
    assert mine.as_json()["conversation_ids"] == ["conv-1"]
