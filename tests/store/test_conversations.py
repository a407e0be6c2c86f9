"""The desk's store: the same tests against SQLite and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from kefu.store import StoreError
from kefu.store.conversations import open_conversation_store, utcnow


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request, tmp_path, pg_url):
    url = f"sqlite:///{tmp_path / 'kefu.db'}" if request.param == "sqlite" else pg_url
    s = open_conversation_store(url)
    yield s
    await s.close()


def cid() -> str:
    return uuid.uuid4().hex


async def test_messages_are_numbered_in_order_without_gaps_under_concurrency(store):
    c = await store.create_conversation(cid(), "hash")
    sent = await asyncio.gather(
        *(store.add_message(c.id, "visitor", f"第{i}条") for i in range(40))
    )
    assert sorted(m.seq for m in sent) == list(range(1, 41))
    stored = await store.messages(c.id)
    assert [m.seq for m in stored] == list(range(1, 41))
    assert {m.text for m in stored} == {f"第{i}条" for i in range(40)}
    assert [m.seq for m in await store.messages(c.id, after=37)] == [38, 39, 40]
    assert (await store.get(c.id)).last_seq == 40


async def test_a_message_for_an_unknown_conversation_is_refused(store):
    with pytest.raises(StoreError):
        await store.add_message("nope", "visitor", "hi")
    with pytest.raises(ValueError):
        await store.update(cid(), colour="red")


async def test_queue_order_is_priority_then_waiting_time(store):
    now = utcnow()
    ids = {}
    for name, priority, minutes in (("early", 40, 10), ("late", 40, 1), ("safety", 100, 0)):
        c = await store.create_conversation(cid(), "h")
        await store.transition(
            c.id,
            ("bot",),
            status="queued",
            reason="x",
            priority=priority,
            waiting_since=now - timedelta(minutes=minutes),
        )
        ids[name] = c.id
    listing = [c.id for c in await store.handed_over()]
    assert listing == [ids["safety"], ids["early"], ids["late"]]
    late = await store.get(ids["late"])
    assert await store.queue_ahead(late) == 2
    assert await store.queue_ahead(await store.get(ids["safety"])) == 0


async def test_an_idle_timer_fires_once_even_when_replicas_race(store):
    c = await store.create_conversation(cid(), "h")
    past = utcnow() - timedelta(seconds=1)
    await store.update(c.id, idle_deadline=past, idle_prompts=0)
    [due] = [d for d in await store.idle_due(utcnow()) if d.id == c.id]
    wins = await asyncio.gather(
        *(store.claim_idle(due, utcnow() + timedelta(seconds=60)) for _ in range(5))
    )
    assert wins.count(True) == 1
    assert (await store.get(c.id)).idle_prompts == 1
    assert c.id not in [d.id for d in await store.idle_due(utcnow())]


async def test_agents_sessions_expire_and_presence_counts(store):
    await store.upsert_agent("alice", "scrypt$x$y", "Alice")
    await store.upsert_agent("alice", "scrypt$new$y", "Alice")  # same agent, new password
    assert (await store.agent("alice")).password_hash == "scrypt$new$y"
    await store.add_session("live", "alice", utcnow() + timedelta(hours=1))
    await store.add_session("dead", "alice", utcnow() - timedelta(seconds=1))
    assert await store.session_user("live") == "alice"
    assert await store.session_user("dead") is None
    assert await store.agents_seen_since(utcnow() - timedelta(minutes=1)) == 0
    await store.touch_agent("alice")
    assert await store.agents_seen_since(utcnow() - timedelta(minutes=1)) == 1


async def test_retention_deletes_only_old_closed_conversations(store):
    old, open_ = (
        await store.create_conversation(cid(), "h"),
        await store.create_conversation(cid(), "h"),
    )
    await store.add_message(old.id, "visitor", "很久以前")
    assert await store.transition(old.id, ("bot",), status="closed")
    assert await store.purge_closed_before(utcnow() + timedelta(seconds=1)) >= 1
    assert await store.get(old.id) is None and await store.messages(old.id) == []
    assert await store.get(open_.id) is not None


async def test_a_status_changes_by_transition_only_and_one_racer_wins(store):
    c = await store.create_conversation(cid(), "h")
    with pytest.raises(ValueError):
        await store.update(c.id, status="queued")  # read-check-write is not allowed
    assert await store.transition(c.id, ("bot",), status="queued", reason="x", priority=40)
    agents = ("alice", "bob", "carol", "dave")
    wins = await asyncio.gather(
        *(store.transition(c.id, ("queued",), status="agent", agent=a) for a in agents)
    )
    assert wins.count(True) == 1
    winner = agents[wins.index(True)]
    assert (await store.get(c.id)).agent == winner
    assert not await store.transition(c.id, ("queued", "callback"), status="agent", agent="eve")
    assert not await store.transition("nope", ("bot",), status="closed")
    with pytest.raises(ValueError):
        await store.transition(c.id, ("limbo",), status="closed")


async def test_replicas_starting_together_on_a_fresh_postgresql_schema_all_start(pg_url):
    # CREATE INDEX IF NOT EXISTS races in PostgreSQL's catalogue: every replica must start.
    stores = [open_conversation_store(pg_url) for _ in range(4)]
    try:
        created = await asyncio.gather(*(s.create_conversation(cid(), "hash") for s in stores))
        assert len({c.id for c in created}) == 4
    finally:
        for s in stores:
            await s.close()
