"""The records store: the same tests against SQLite and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from kefu.store import StoreError, open_store
from kefu.store.records import PostgresStore, SQLiteStore

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request, tmp_path):
    if request.param == "sqlite":
        s = SQLiteStore(tmp_path / "kefu.db")
        yield s
        await s.close()
        return
    schema = f"kefu_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES)
    await admin.execute(f"CREATE SCHEMA {schema}")
    s = PostgresStore(POSTGRES, server_settings={"search_path": schema})
    try:
        yield s
    finally:
        await s.close()
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


async def test_records_get_numbers_and_come_back(store):
    ticket = await store.add("ticket", "c1", {"facts": ["耳机没有声音"], "wants": "换新"})
    survey = await store.add("survey", "c1", {"score": 5})
    await store.add("suggestion", "c2", {"text": "建议周末发货"})
    assert ticket.number.startswith("T") and ticket.number.endswith(f"{ticket.id:06d}")
    assert survey.number.startswith("Q")
    mine = await store.find(conversation_id="c1")
    assert [(r.kind, r.data) for r in mine] == [
        ("ticket", {"facts": ["耳机没有声音"], "wants": "换新"}),
        ("survey", {"score": 5}),
    ]
    assert [r.number for r in await store.find(kind="suggestion")] != []
    assert mine[0].number == ticket.number


async def test_concurrent_adds_get_distinct_numbers(store):
    records = await asyncio.gather(*(store.add("return", f"c{i}", {"i": i}) for i in range(20)))
    assert len({r.number for r in records}) == 20
    assert len(await store.find(kind="return")) == 20


async def test_bad_input_is_refused(store):
    with pytest.raises(ValueError):
        await store.add("nonsense", "c1", {})
    with pytest.raises(ValueError):
        await store.add("ticket", "", {})


async def test_unreachable_postgres_is_a_store_error():
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/test")
    with pytest.raises(StoreError):
        await store.add("ticket", "c1", {})


def test_url_chooses_the_backend(tmp_path):
    assert isinstance(open_store(f"sqlite:///{tmp_path}/x.db"), SQLiteStore)
    assert isinstance(open_store(POSTGRES), PostgresStore)
    with pytest.raises(StoreError):
        open_store("mysql://root@localhost/test")
