"""Records the assistant keeps: complaint tickets, return requests, suggestions, surveys."""

from __future__ import annotations

import asyncio
import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

from kefu.paths import ROOT

DEFAULT_URL = f"sqlite:///{ROOT / 'var' / 'kefu.db'}"
# A record's number is what a visitor is told: kind prefix, date, sequence.
SCHEMA_LOCK = 0x6B656675  # "kefu": advisory lock id for schema creation
PREFIXES = {"ticket": "T", "return": "R", "suggestion": "S", "survey": "Q", "callback": "C"}


class StoreError(RuntimeError):
    """The store could not be reached or refused the operation."""


@dataclass(frozen=True)
class Record:
    id: int
    number: str
    kind: str
    conversation_id: str
    data: Dict[str, Any]
    created_at: datetime


def store_url() -> str:
    return os.environ.get("KEFU_DATABASE_URL") or DEFAULT_URL


def number_for(kind: str, record_id: int, when: datetime) -> str:
    return f"{PREFIXES[kind]}{when:%Y%m%d}{record_id:06d}"


class RecordStore(ABC):
    @abstractmethod
    async def add(self, kind: str, conversation_id: str, data: Dict[str, Any]) -> Record: ...

    @abstractmethod
    async def find(
        self, kind: Optional[str] = None, conversation_id: Optional[str] = None
    ) -> List[Record]: ...

    @abstractmethod
    async def append(self, number: str, key: str, value: Any) -> bool:
        """Add `value` to the list under `key` of record `number`, in one transaction;
        False when there is no such record."""

    @abstractmethod
    async def close(self) -> None: ...

    @staticmethod
    def _check(kind: str, conversation_id: str) -> None:
        if kind not in PREFIXES:
            raise ValueError(f"unknown record kind '{kind}'")
        if not conversation_id:
            raise ValueError("a record belongs to a conversation")


class SQLiteStore(RecordStore):
    """aiosqlite, one connection per operation: nothing to keep open or clean up."""

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "number TEXT UNIQUE, kind TEXT NOT NULL, conversation_id TEXT NOT NULL, "
        "data TEXT NOT NULL, created_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS records_conversation ON records (conversation_id)",
    )

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ready = False
        self._lock = asyncio.Lock()

    async def _connect(self):  # type: ignore[no-untyped-def]
        import aiosqlite

        async with self._lock:
            if not self._ready:
                await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)
                async with aiosqlite.connect(self.path, timeout=10) as db:
                    for statement in self.SCHEMA:
                        await db.execute(statement)
                    await db.commit()
                self._ready = True
        return await aiosqlite.connect(self.path, timeout=10)

    async def add(self, kind: str, conversation_id: str, data: Dict[str, Any]) -> Record:
        self._check(kind, conversation_id)
        now = datetime.now(timezone.utc)
        db = await self._connect()
        try:
            cursor = await db.execute(
                "INSERT INTO records (kind, conversation_id, data, created_at) VALUES (?, ?, ?, ?)",
                (kind, conversation_id, json.dumps(data, ensure_ascii=False), now.isoformat()),
            )
            record_id = int(cursor.lastrowid or 0)
            number = number_for(kind, record_id, now)
            await db.execute("UPDATE records SET number = ? WHERE id = ?", (number, record_id))
            await db.commit()
        finally:
            await db.close()
        return Record(record_id, number, kind, conversation_id, data, now)

    async def find(
        self, kind: Optional[str] = None, conversation_id: Optional[str] = None
    ) -> List[Record]:
        query, args = "SELECT id, number, kind, conversation_id, data, created_at FROM records", []
        clauses = []
        if kind:
            clauses.append("kind = ?")
            args.append(kind)
        if conversation_id:
            clauses.append("conversation_id = ?")
            args.append(conversation_id)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        db = await self._connect()
        try:
            async with db.execute(query + " ORDER BY id", args) as cursor:
                rows = await cursor.fetchall()
        finally:
            await db.close()
        return [
            Record(r[0], r[1], r[2], r[3], json.loads(r[4]), datetime.fromisoformat(r[5]))
            for r in rows
        ]

    async def append(self, number: str, key: str, value: Any) -> bool:
        db = await self._connect()
        try:
            await db.execute("BEGIN IMMEDIATE")  # read and write as one step
            async with db.execute("SELECT data FROM records WHERE number = ?", (number,)) as c:
                row = await c.fetchone()
            if row is None:
                await db.rollback()
                return False
            data = json.loads(row[0])
            data[key] = _as_list(data.get(key)) + [value]
            await db.execute(
                "UPDATE records SET data = ? WHERE number = ?",
                (json.dumps(data, ensure_ascii=False), number),
            )
            await db.commit()
            return True
        finally:
            await db.close()

    async def close(self) -> None:
        return None


class PostgresStore(RecordStore):
    """asyncpg with a small pool, created on first use."""

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS records (id BIGSERIAL PRIMARY KEY, number TEXT UNIQUE, "
        "kind TEXT NOT NULL, conversation_id TEXT NOT NULL, data JSONB NOT NULL, "
        "created_at TIMESTAMPTZ NOT NULL)",
        "CREATE INDEX IF NOT EXISTS records_conversation ON records (conversation_id)",
    )

    def __init__(
        self, url: str, pool_size: int = 5, server_settings: Optional[Dict[str, str]] = None
    ) -> None:
        self.url, self.pool_size = url, pool_size
        self.server_settings = server_settings
        self._pool = None
        self._lock = asyncio.Lock()

    async def _pool_(self):  # type: ignore[no-untyped-def]
        import asyncpg

        async with self._lock:  # one pool per store, however many first callers
            if self._pool is None:
                try:
                    pool = await asyncpg.create_pool(
                        self.url,
                        min_size=1,
                        max_size=self.pool_size,
                        timeout=10,
                        server_settings=self.server_settings,
                    )
                except (OSError, asyncpg.PostgresError) as e:
                    raise StoreError(f"cannot reach PostgreSQL: {e}") from e
                # CREATE ... IF NOT EXISTS races between processes: serialise replicas.
                async with pool.acquire() as connection, connection.transaction():
                    await connection.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
                    for statement in self.SCHEMA:
                        await connection.execute(statement)
                self._pool = pool
        return self._pool

    async def add(self, kind: str, conversation_id: str, data: Dict[str, Any]) -> Record:
        self._check(kind, conversation_id)
        now = datetime.now(timezone.utc)
        pool = await self._pool_()
        async with pool.acquire() as connection, connection.transaction():
            record_id = int(
                await connection.fetchval(
                    "INSERT INTO records (kind, conversation_id, data, created_at) "
                    "VALUES ($1, $2, $3::jsonb, $4) RETURNING id",
                    kind,
                    conversation_id,
                    json.dumps(data, ensure_ascii=False),
                    now,
                )
            )
            number = number_for(kind, record_id, now)
            await connection.execute(
                "UPDATE records SET number = $1 WHERE id = $2", number, record_id
            )
        return Record(record_id, number, kind, conversation_id, data, now)

    async def find(
        self, kind: Optional[str] = None, conversation_id: Optional[str] = None
    ) -> List[Record]:
        pool = await self._pool_()
        rows = await pool.fetch(
            "SELECT id, number, kind, conversation_id, data::text AS data, created_at "
            "FROM records WHERE ($1::text IS NULL OR kind = $1) "
            "AND ($2::text IS NULL OR conversation_id = $2) ORDER BY id",
            kind,
            conversation_id,
        )
        return [
            Record(
                r["id"],
                r["number"],
                r["kind"],
                r["conversation_id"],
                json.loads(r["data"]),
                r["created_at"],
            )
            for r in rows
        ]

    async def append(self, number: str, key: str, value: Any) -> bool:
        pool = await self._pool_()
        status = await pool.execute(
            "UPDATE records SET data = jsonb_set(data, ARRAY[$2::text], "
            "CASE jsonb_typeof(data->$2) WHEN 'array' THEN data->$2 "
            "WHEN 'string' THEN jsonb_build_array(data->$2) ELSE '[]'::jsonb END "
            "|| jsonb_build_array($3::jsonb)) WHERE number = $1",
            number,
            key,
            json.dumps(value, ensure_ascii=False),
        )
        return status.endswith(" 1")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def _as_list(value: Any) -> List[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def open_store(url: Optional[str] = None) -> RecordStore:
    """The store a URL names: sqlite:///path or postgresql://user@host/db."""
    url = url or store_url()
    if url.startswith("sqlite:///"):
        return SQLiteStore(Path(url[len("sqlite:///") :]))
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url)
    raise StoreError(f"unsupported database URL scheme in {url.split('://')[0]}://…")
