"""The records store: the same tests against SQLite and a real PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from kefu.store import StoreError, open_store
from kefu.store.sql import PostgresDatabase, SQLiteDatabase
from tests.conftest import POSTGRES


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request, tmp_path, pg_url):
    s = open_store(f"sqlite:///{tmp_path / 'kefu.db'}" if request.param == "sqlite" else pg_url)
    yield s
    await s.close()


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
    store = open_store("postgresql://postgres@127.0.0.1:1/test")
    with pytest.raises(StoreError) as raised:
        await store.add("ticket", "c1", {})
    assert isinstance(raised.value.__cause__, OSError)  # the driver's error is kept as cause


async def test_appending_to_a_record_is_one_transaction(store):
    ticket = await store.add("ticket", "c1", {"facts": "耳机没有声音"})
    added = await asyncio.gather(
        *(store.append(ticket.number, "facts", f"补充{i}") for i in range(10))
    )
    assert all(added) and not await store.append("T000", "facts", "x")
    [again] = await store.find(kind="ticket")
    assert again.data["facts"][0] == "耳机没有声音" and len(again.data["facts"]) == 11


def test_url_chooses_the_backend(tmp_path):
    assert isinstance(open_store(f"sqlite:///{tmp_path}/x.db").db, SQLiteDatabase)
    assert isinstance(open_store(POSTGRES).db, PostgresDatabase)
    with pytest.raises(StoreError):
        open_store("mysql://root@localhost/test")
