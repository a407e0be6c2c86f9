"""Records the assistant keeps: complaint tickets, return requests, suggestions, surveys."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, List, Optional

from kefu.store.sql import Database, StoreError, Transaction, open_database, store_url, utcnow

__all__ = ["PREFIXES", "Record", "RecordStore", "StoreError", "open_store", "store_url"]

# A record's number is what a visitor is told: kind prefix, date, sequence.
PREFIXES = {"ticket": "T", "return": "R", "suggestion": "S", "survey": "Q", "callback": "C"}
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS records (id {serial}, number TEXT UNIQUE, kind TEXT NOT NULL, "
    "conversation_id TEXT NOT NULL, data {json} NOT NULL, created_at {ts} NOT NULL)",
    "CREATE INDEX IF NOT EXISTS records_conversation ON records (conversation_id)",
)
COLUMNS = "id, number, kind, conversation_id, CAST(data AS TEXT) AS data, created_at"


@dataclass(frozen=True)
class Record:
    id: int
    number: str
    kind: str
    conversation_id: str
    data: Dict[str, Any]
    created_at: datetime


def number_for(kind: str, record_id: int, when: datetime) -> str:
    return f"{PREFIXES[kind]}{when:%Y%m%d}{record_id:06d}"


class RecordStore:
    """Records on SQLite or PostgreSQL, the same SQL for both."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def _ready(self) -> Database:
        await self.db.ensure_schema("records", SCHEMA)
        return self.db

    async def add(self, kind: str, conversation_id: str, data: Dict[str, Any]) -> Record:
        if kind not in PREFIXES:
            raise ValueError(f"unknown record kind '{kind}'")
        if not conversation_id:
            raise ValueError("a record belongs to a conversation")
        db = await self._ready()
        now = utcnow()

        async def insert(tx: Transaction) -> Record:
            rows = await tx.fetch(
                db.sql(
                    "INSERT INTO records (kind, conversation_id, data, created_at) "
                    "VALUES (?, ?, CAST(? AS {json}), ?) RETURNING id"
                ),
                (kind, conversation_id, json.dumps(data, ensure_ascii=False), db.time(now)),
            )
            record_id = int(rows[0]["id"])
            number = number_for(kind, record_id, now)
            await tx.execute("UPDATE records SET number = ? WHERE id = ?", (number, record_id))
            return Record(record_id, number, kind, conversation_id, data, now)

        return await db.transaction(insert)

    async def find(
        self, kind: Optional[str] = None, conversation_id: Optional[str] = None
    ) -> List[Record]:
        db = await self._ready()
        rows = await db.fetch(
            f"SELECT {COLUMNS} FROM records WHERE (CAST(? AS TEXT) IS NULL OR kind = ?) "
            "AND (CAST(? AS TEXT) IS NULL OR conversation_id = ?) ORDER BY id",
            (kind, kind, conversation_id, conversation_id),
        )
        return [
            Record(
                int(r["id"]),
                r["number"],
                r["kind"],
                r["conversation_id"],
                json.loads(r["data"]),
                db.datetime(r["created_at"]) or utcnow(),
            )
            for r in rows
        ]

    async def append(self, number: str, key: str, value: Any) -> bool:
        """Adds `value` to the list under `key` of record `number`, in one transaction;
        False when there is no such record."""
        db = await self._ready()

        async def add_to_list(tx: Transaction) -> bool:
            rows = await tx.fetch(
                db.sql(
                    "SELECT CAST(data AS TEXT) AS data FROM records WHERE number = ?{for_update}"
                ),
                (number,),
            )
            if not rows:
                return False
            data = json.loads(rows[0]["data"])
            data[key] = _as_list(data.get(key)) + [value]
            await tx.execute(
                db.sql("UPDATE records SET data = CAST(? AS {json}) WHERE number = ?"),
                (json.dumps(data, ensure_ascii=False), number),
            )
            return True

        return await db.transaction(add_to_list)

    async def close(self) -> None:
        await self.db.close()


def _as_list(value: Any) -> List[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def open_store(url: Optional[str] = None) -> RecordStore:
    """The records store a URL names: sqlite:///path or postgresql://user@host/db."""
    return RecordStore(open_database(url))
