"""One database layer for every store: SQL written once, retries, errors with their cause.

SQL uses `?` placeholders (numbered for PostgreSQL) and a few dialect words
(`{ts}`, `{json}`, `{serial}`, `{for_update}`). SQLite: one aiosqlite connection in WAL
mode (its own thread: the event loop never waits on disk), one statement or transaction at
a time. PostgreSQL: an asyncpg pool; a lost connection or a brief outage is retried with
backoff, the whole transaction at once. Driver errors become StoreError with the driver's
error as the cause; anything else (a bug) propagates as itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from abc import ABC, abstractmethod
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence, TypeVar

from kefu.paths import VAR_DIR

logger = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_URL = f"sqlite:///{VAR_DIR / 'kefu.db'}"
SCHEMA_LOCK = 0x6B656675  # "kefu": advisory lock id for schema creation
# A store outage of about four seconds is absorbed; longer ones are a StoreError (503).
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)


class StoreError(RuntimeError):
    """The store could not be reached or refused the operation."""


def store_url() -> str:
    return os.environ.get("KEFU_DATABASE_URL") or DEFAULT_URL


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Transaction(ABC):
    """Statements inside one transaction."""

    @abstractmethod
    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Runs a statement; the number of rows it changed."""

    @abstractmethod
    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> List[Dict[str, Any]]: ...


class Database(ABC):
    dialect: str
    words: Dict[str, str]

    def sql(self, text: str) -> str:
        """The dialect's words filled in (`{ts}`, `{json}`, `{serial}`, `{for_update}`)."""
        return text.format(**self.words)

    @abstractmethod
    def json_number(self, column: str, key: str) -> str:
        """SQL for the number under `key` in a JSON column (NULL when absent)."""

    @abstractmethod
    async def transaction(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        """Runs `work` in one transaction: all of it or none (retried whole on PostgreSQL)."""

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        return await self.transaction(lambda tx: tx.execute(sql, args))

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> List[Dict[str, Any]]:
        return await self.transaction(lambda tx: tx.fetch(sql, args))

    @abstractmethod
    async def ensure_schema(self, name: str, statements: Sequence[str]) -> None:
        """Creates tables once per process (serialised between processes)."""

    @abstractmethod
    async def columns(self, table: str) -> set:
        """The column names of `table` (for additive migrations)."""

    @abstractmethod
    def time(self, value: Optional[datetime]) -> Any: ...

    @abstractmethod
    def datetime(self, value: Any) -> Optional[datetime]: ...

    @abstractmethod
    async def close(self) -> None: ...


# --- SQLite ------------------------------------------------------------------------


class _SQLiteTx(Transaction):
    def __init__(self, db: Any) -> None:
        self.db = db

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        cursor = await self.db.execute(sql, tuple(args))
        return int(cursor.rowcount or 0)

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> List[Dict[str, Any]]:
        async with self.db.execute(sql, tuple(args)) as cursor:
            return [dict(row) for row in await cursor.fetchall()]


class SQLiteDatabase(Database):
    dialect = "sqlite"
    words = {
        "ts": "TEXT",
        "json": "TEXT",
        "serial": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "for_update": "",
    }

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: Any = None
        self._lock = asyncio.Lock()  # one statement or transaction at a time
        self._schemas: set = set()

    async def _connection(self) -> Any:
        import aiosqlite

        if self._db is None:
            await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)
            db = await aiosqlite.connect(self.path, timeout=10, isolation_level=None)
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA busy_timeout=10000")
            self._db = db
        return self._db

    def json_number(self, column: str, key: str) -> str:
        return f"CAST(json_extract({column}, '$.{key}') AS REAL)"

    async def transaction(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        import sqlite3

        async with self._lock:
            try:
                db = await self._connection()
                await db.execute("BEGIN IMMEDIATE")  # reads and writes as one step
            except (sqlite3.Error, OSError) as e:
                raise StoreError(f"SQLite: {e}") from e
            try:
                result = await work(_SQLiteTx(db))
                await db.execute("COMMIT")
                return result
            except BaseException as e:
                try:
                    await db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                if isinstance(e, sqlite3.Error):
                    raise StoreError(f"SQLite: {e}") from e
                raise

    async def ensure_schema(self, name: str, statements: Sequence[str]) -> None:
        if name in self._schemas:
            return

        async def create(tx: Transaction) -> None:
            for statement in statements:
                await tx.execute(self.sql(statement))

        await self.transaction(create)
        self._schemas.add(name)

    async def columns(self, table: str) -> set:
        rows = await self.fetch(f"PRAGMA table_info({table})")
        return {row["name"] for row in rows}

    def time(self, value: Optional[datetime]) -> Any:
        return value.astimezone(timezone.utc).isoformat() if value else None

    def datetime(self, value: Any) -> Optional[datetime]:
        return datetime.fromisoformat(value) if value else None

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None


# --- PostgreSQL ----------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\?")


def numbered(sql: str) -> str:
    counter = iter(range(1, 1000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


def transient(error: BaseException) -> bool:
    import asyncpg

    return isinstance(
        error,
        (
            OSError,
            asyncio.TimeoutError,
            asyncpg.InterfaceError,  # includes a connection that went away
            asyncpg.PostgresConnectionError,
            asyncpg.CannotConnectNowError,
        ),
    )


class _PostgresTx(Transaction):
    def __init__(self, connection: Any) -> None:
        self.connection = connection

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        status = await self.connection.execute(numbered(sql), *args)
        tail = str(status).rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> List[Dict[str, Any]]:
        return [dict(row) for row in await self.connection.fetch(numbered(sql), *args)]


class PostgresDatabase(Database):
    dialect = "postgresql"
    words = {
        "ts": "TIMESTAMPTZ",
        "json": "JSONB",
        "serial": "BIGSERIAL PRIMARY KEY",
        "for_update": " FOR UPDATE",
    }

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url, self.pool_size = url, pool_size
        self._pool: Any = None
        self._lock = asyncio.Lock()
        self._schemas: set = set()

    async def _get_pool(self) -> Any:
        import asyncpg

        async with self._lock:  # one pool per database, however many first callers
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self.url, min_size=1, max_size=self.pool_size, timeout=5, command_timeout=10
                )
        return self._pool

    def json_number(self, column: str, key: str) -> str:
        return f"CAST(({column}->>'{key}') AS DOUBLE PRECISION)"

    async def transaction(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        import asyncpg

        async def once() -> T:
            pool = await self._get_pool()
            async with pool.acquire() as connection, connection.transaction():
                return await work(_PostgresTx(connection))

        for delay in (*RETRY_DELAYS, None):
            try:
                return await once()
            except StoreError:
                raise
            except (asyncpg.PostgresError, OSError, asyncio.TimeoutError) as e:
                if not transient(e):
                    raise StoreError(f"PostgreSQL: {e}") from e
                error: BaseException = e
            except asyncpg.InterfaceError as e:
                error = e
            if delay is None:
                raise StoreError(f"PostgreSQL unavailable: {error!r}") from error
            logger.warning("PostgreSQL unavailable (%r); retrying in %.1f s", error, delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def ensure_schema(self, name: str, statements: Sequence[str]) -> None:
        if name in self._schemas:
            return

        async def create(tx: Transaction) -> None:
            # CREATE ... IF NOT EXISTS races between replicas: serialise them.
            await tx.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))
            for statement in statements:
                await tx.execute(self.sql(statement))

        await self.transaction(create)
        self._schemas.add(name)

    async def columns(self, table: str) -> set:
        rows = await self.fetch(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        )
        return {row["column_name"] for row in rows}

    def time(self, value: Optional[datetime]) -> Any:
        return value

    def datetime(self, value: Any) -> Optional[datetime]:
        return value  # type: ignore[no-any-return]

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def open_database(url: Optional[str] = None) -> Database:
    """The database a URL names: sqlite:///path or postgresql://user@host/db."""
    url = url or store_url()
    if url.startswith("sqlite:///"):
        return SQLiteDatabase(Path(url[len("sqlite:///") :]))
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(url, int(os.environ.get("KEFU_DB_POOL", "10")))
    raise StoreError(f"unsupported database URL scheme in {url.split('://')[0]}://…")
