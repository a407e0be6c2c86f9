"""The desk's store: conversations, their messages, agents and agent sessions.

It lives in the same database as the records (`KEFU_DATABASE_URL`; a SQLite file
by default, PostgreSQL at scale), behind one interface with one set of SQL.
Messages carry a per-conversation sequence number, so a page that reconnects asks
for everything after the last number it saw and gets it in order, exactly once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from kefu.store.records import SCHEMA_LOCK, StoreError, store_url

logger = logging.getLogger(__name__)
MODES = ("bot", "queued", "agent", "callback", "closed")
SENDERS = ("visitor", "bot", "agent")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Conversation:
    id: str
    token_hash: str
    status: str
    created_at: datetime
    reason: Optional[str] = None
    priority: int = 0
    waiting_since: Optional[datetime] = None
    agent: Optional[str] = None
    summary: Dict[str, Any] = field(default_factory=dict)
    last_seq: int = 0
    idle_deadline: Optional[datetime] = None
    idle_prompts: int = 0
    updated_at: Optional[datetime] = None

    def as_listing(self) -> Dict[str, Any]:
        return {
            "conversation_id": self.id,
            "status": self.status,
            "reason": self.reason,
            "priority": self.priority,
            "waiting_since": self.waiting_since.isoformat() if self.waiting_since else None,
            "agent": self.agent,
            "summary": self.summary,
        }


@dataclass(frozen=True)
class Message:
    conversation_id: str
    seq: int
    sender: str
    text: str
    created_at: datetime

    def as_dict(self) -> Dict[str, Any]:
        return {
            "seq": self.seq,
            "sender": self.sender,
            "text": self.text,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class Agent:
    username: str
    password_hash: str
    display_name: str
    last_seen: Optional[datetime]


_CONV_COLUMNS = (
    "id, token_hash, status, created_at, reason, priority, waiting_since, agent, summary, "
    "last_seq, idle_deadline, idle_prompts, updated_at"
)


class ConversationStore(ABC):
    """One interface; SQL written once with ? placeholders."""

    dialect: str

    @abstractmethod
    async def _execute(self, sql: str, args: Sequence[Any] = ()) -> None: ...

    @abstractmethod
    async def _fetch(self, sql: str, args: Sequence[Any] = ()) -> List[Dict[str, Any]]: ...

    @abstractmethod
    async def _next_seq_and_insert(
        self, conversation_id: str, sender: str, text: str, now: datetime
    ) -> int: ...

    @abstractmethod
    async def close(self) -> None: ...

    # --- conversations -----------------------------------------------------
    async def create_conversation(self, conversation_id: str, token_hash: str) -> Conversation:
        now = utcnow()
        await self._execute(
            "INSERT INTO conversations (id, token_hash, status, created_at, priority, summary, "
            "last_seq, idle_prompts, updated_at) VALUES (?, ?, 'bot', ?, 0, '{}', 0, 0, ?)",
            (conversation_id, token_hash, self._time(now), self._time(now)),
        )
        return Conversation(conversation_id, token_hash, "bot", now, updated_at=now)

    async def get(self, conversation_id: str) -> Optional[Conversation]:
        rows = await self._fetch(
            f"SELECT {_CONV_COLUMNS} FROM conversations WHERE id = ?", (conversation_id,)
        )
        return self._conversation(rows[0]) if rows else None

    async def update(self, conversation_id: str, **values: Any) -> None:
        """Set columns (status, reason, priority, waiting_since, agent, summary, idle_*)."""
        allowed = {
            "status",
            "reason",
            "priority",
            "waiting_since",
            "agent",
            "summary",
            "idle_deadline",
            "idle_prompts",
        }
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"unknown conversation fields {sorted(unknown)}")
        if values.get("status") is not None and values["status"] not in MODES:
            raise ValueError(f"unknown status {values['status']!r}")
        values["updated_at"] = utcnow()
        columns = ", ".join(f"{name} = ?" for name in values)
        args = [self._value(v) for v in values.values()] + [conversation_id]
        await self._execute(f"UPDATE conversations SET {columns} WHERE id = ?", args)

    async def handed_over(self) -> List[Conversation]:
        """Every conversation that left bot mode and has not come back to it."""
        rows = await self._fetch(
            f"SELECT {_CONV_COLUMNS} FROM conversations WHERE status <> 'bot' "
            "AND reason IS NOT NULL ORDER BY priority DESC, waiting_since ASC"
        )
        return [self._conversation(r) for r in rows]

    async def queue_ahead(self, conversation: Conversation) -> int:
        """Queued conversations served before this one (higher priority, or earlier)."""
        rows = await self._fetch(
            "SELECT COUNT(*) AS n FROM conversations WHERE status = 'queued' AND id <> ? AND "
            "(priority > ? OR (priority = ? AND waiting_since < ?))",
            (
                conversation.id,
                conversation.priority,
                conversation.priority,
                self._time(conversation.waiting_since or utcnow()),
            ),
        )
        return int(rows[0]["n"])

    async def idle_due(self, now: datetime, limit: int = 100) -> List[Conversation]:
        rows = await self._fetch(
            f"SELECT {_CONV_COLUMNS} FROM conversations WHERE status = 'bot' AND "
            "idle_deadline IS NOT NULL AND idle_deadline <= ? ORDER BY idle_deadline LIMIT ?",
            (self._time(now), limit),
        )
        return [self._conversation(r) for r in rows]

    async def claim_idle(self, conversation: Conversation, deadline: Optional[datetime]) -> bool:
        """Move an idle timer on, once: replicas racing for the same timer, one wins."""
        rows = await self._fetch(
            "UPDATE conversations SET idle_deadline = ?, idle_prompts = idle_prompts + 1 "
            "WHERE id = ? AND status = 'bot' AND idle_prompts = ? RETURNING id",
            (
                self._time(deadline) if deadline else None,
                conversation.id,
                conversation.idle_prompts,
            ),
        )
        return bool(rows)

    async def purge_closed_before(self, cutoff: datetime) -> int:
        """Retention: closed conversations last touched before `cutoff`, with their messages."""
        rows = await self._fetch(
            "SELECT id FROM conversations WHERE status = 'closed' AND updated_at < ?",
            (self._time(cutoff),),
        )
        for row in rows:
            await self._execute("DELETE FROM messages WHERE conversation_id = ?", (row["id"],))
            await self._execute("DELETE FROM conversations WHERE id = ?", (row["id"],))
        return len(rows)

    # --- messages ----------------------------------------------------------
    async def add_message(self, conversation_id: str, sender: str, text: str) -> Message:
        if sender not in SENDERS:
            raise ValueError(f"unknown sender {sender!r}")
        now = utcnow()
        seq = await self._next_seq_and_insert(conversation_id, sender, text, now)
        return Message(conversation_id, seq, sender, text, now)

    async def messages(self, conversation_id: str, after: int = 0) -> List[Message]:
        rows = await self._fetch(
            "SELECT conversation_id, seq, sender, text, created_at FROM messages "
            "WHERE conversation_id = ? AND seq > ? ORDER BY seq",
            (conversation_id, after),
        )
        return [
            Message(
                r["conversation_id"],
                int(r["seq"]),
                r["sender"],
                r["text"],
                self._dt(r["created_at"]) or utcnow(),
            )
            for r in rows
        ]

    # --- agents ------------------------------------------------------------
    async def upsert_agent(self, username: str, password_hash: str, display_name: str) -> None:
        await self._execute(
            "INSERT INTO agents (username, password_hash, display_name) VALUES (?, ?, ?) "
            "ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, "
            "display_name = excluded.display_name",
            (username, password_hash, display_name),
        )

    async def agent(self, username: str) -> Optional[Agent]:
        rows = await self._fetch(
            "SELECT username, password_hash, display_name, last_seen FROM agents "
            "WHERE username = ?",
            (username,),
        )
        if not rows:
            return None
        r = rows[0]
        return Agent(r["username"], r["password_hash"], r["display_name"], self._dt(r["last_seen"]))

    async def agents(self) -> List[Agent]:
        rows = await self._fetch(
            "SELECT username, password_hash, display_name, last_seen FROM agents"
        )
        return [
            Agent(r["username"], r["password_hash"], r["display_name"], self._dt(r["last_seen"]))
            for r in rows
        ]

    async def touch_agent(self, username: str) -> None:
        await self._execute(
            "UPDATE agents SET last_seen = ? WHERE username = ?", (self._time(utcnow()), username)
        )

    async def agents_seen_since(self, since: datetime) -> int:
        rows = await self._fetch(
            "SELECT COUNT(*) AS n FROM agents WHERE last_seen >= ?", (self._time(since),)
        )
        return int(rows[0]["n"])

    async def add_session(self, token_hash: str, username: str, expires_at: datetime) -> None:
        await self._execute(
            "INSERT INTO agent_sessions (token_hash, username, expires_at) VALUES (?, ?, ?)",
            (token_hash, username, self._time(expires_at)),
        )

    async def session_user(self, token_hash: str) -> Optional[str]:
        rows = await self._fetch(
            "SELECT username FROM agent_sessions WHERE token_hash = ? AND expires_at > ?",
            (token_hash, self._time(utcnow())),
        )
        return rows[0]["username"] if rows else None

    # --- value conversion --------------------------------------------------
    def _time(self, value: Optional[datetime]) -> Any:
        return value

    def _dt(self, value: Any) -> Optional[datetime]:
        return value

    def _value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return json.dumps(value, ensure_ascii=False)
        if isinstance(value, datetime):
            return self._time(value)
        return value

    def _conversation(self, r: Dict[str, Any]) -> Conversation:
        summary = r["summary"]
        return Conversation(
            id=r["id"],
            token_hash=r["token_hash"],
            status=r["status"],
            created_at=self._dt(r["created_at"]) or utcnow(),
            reason=r["reason"],
            priority=int(r["priority"] or 0),
            waiting_since=self._dt(r["waiting_since"]),
            agent=r["agent"],
            summary=json.loads(summary) if isinstance(summary, str) else (summary or {}),
            last_seq=int(r["last_seq"] or 0),
            idle_deadline=self._dt(r["idle_deadline"]),
            idle_prompts=int(r["idle_prompts"] or 0),
            updated_at=self._dt(r["updated_at"]),
        )


_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
  id TEXT PRIMARY KEY, token_hash TEXT NOT NULL, status TEXT NOT NULL,
  created_at {ts} NOT NULL, reason TEXT, priority INTEGER NOT NULL DEFAULT 0,
  waiting_since {ts}, agent TEXT, summary TEXT NOT NULL DEFAULT '{{}}',
  last_seq INTEGER NOT NULL DEFAULT 0, idle_deadline {ts},
  idle_prompts INTEGER NOT NULL DEFAULT 0, updated_at {ts});
CREATE INDEX IF NOT EXISTS conversations_status ON conversations (status, priority, waiting_since);
CREATE INDEX IF NOT EXISTS conversations_idle ON conversations (status, idle_deadline);
CREATE TABLE IF NOT EXISTS messages (
  conversation_id TEXT NOT NULL, seq INTEGER NOT NULL, sender TEXT NOT NULL,
  text TEXT NOT NULL, created_at {ts} NOT NULL, msg_id TEXT,
  PRIMARY KEY (conversation_id, seq));
CREATE TABLE IF NOT EXISTS agents (
  username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, display_name TEXT NOT NULL,
  last_seen {ts});
CREATE TABLE IF NOT EXISTS agent_sessions (
  token_hash TEXT PRIMARY KEY, username TEXT NOT NULL, expires_at {ts} NOT NULL)
"""


# Stores made before messages had an id of their own get the column and its index.
_MSG_ID_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS messages_msg_id ON messages (msg_id)"


class SQLiteConversationStore(ConversationStore):
    """One aiosqlite connection (its own thread, so the event loop never waits on disk)."""

    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: Any = None
        self._lock = asyncio.Lock()  # one writer at a time on the shared connection

    async def _conn(self) -> Any:
        import aiosqlite

        if self._db is None:
            await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)
            db = await aiosqlite.connect(self.path, timeout=10)
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA busy_timeout=10000")
            await db.executescript(_SCHEMA.format(ts="TEXT"))
            async with db.execute("PRAGMA table_info(messages)") as cursor:
                columns = {row[1] for row in await cursor.fetchall()}
            if "msg_id" not in columns:
                await db.execute("ALTER TABLE messages ADD COLUMN msg_id TEXT")
            await db.execute(_MSG_ID_INDEX)
            await db.commit()
            self._db = db
        return self._db

    async def _execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        async with self._lock:
            db = await self._conn()
            try:
                await db.execute(sql, tuple(args))
                await db.commit()
            except Exception as e:  # sqlite3.Error and aiosqlite's wrappers
                raise StoreError(f"SQLite: {e}") from e

    async def _fetch(self, sql: str, args: Sequence[Any] = ()) -> List[Dict[str, Any]]:
        async with self._lock:
            db = await self._conn()
            try:
                async with db.execute(sql, tuple(args)) as cursor:
                    rows = [dict(r) for r in await cursor.fetchall()]
                if sql.lstrip().upper().startswith("UPDATE"):
                    await db.commit()
                return rows
            except Exception as e:
                raise StoreError(f"SQLite: {e}") from e

    async def _next_seq_and_insert(
        self, conversation_id: str, sender: str, text: str, now: datetime
    ) -> int:
        async with self._lock:
            db = await self._conn()
            try:
                async with db.execute(
                    "UPDATE conversations SET last_seq = last_seq + 1, updated_at = ? "
                    "WHERE id = ? RETURNING last_seq",
                    (self._time(now), conversation_id),
                ) as cursor:
                    row = await cursor.fetchone()
                if row is None:
                    await db.rollback()
                    raise StoreError(f"no conversation {conversation_id}")
                seq = int(row[0])
                await db.execute(
                    "INSERT INTO messages (conversation_id, seq, sender, text, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (conversation_id, seq, sender, text, self._time(now)),
                )
                await db.commit()
                return seq
            except StoreError:
                raise
            except Exception as e:
                await db.rollback()
                raise StoreError(f"SQLite: {e}") from e

    def _time(self, value: Optional[datetime]) -> Any:
        return value.astimezone(timezone.utc).isoformat() if value else None

    def _dt(self, value: Any) -> Optional[datetime]:
        return datetime.fromisoformat(value) if value else None

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None


_PLACEHOLDER = re.compile(r"\?")


def _numbered(sql: str) -> str:
    counter = iter(range(1, 1000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


# A store outage of about four seconds is absorbed; longer ones answer 503.
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)


def _transient(error: BaseException) -> bool:
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


class PostgresConversationStore(ConversationStore):
    """asyncpg with a pool sized by KEFU_DB_POOL (replicas × pool ≤ max_connections).

    Lost connections are retried with backoff. A message insert carries an id of its
    own, so a retry after a connection lost during the commit cannot store it twice.
    """

    dialect = "postgresql"

    def __init__(
        self, url: str, pool_size: int = 10, server_settings: Optional[Dict[str, str]] = None
    ) -> None:
        self.url, self.pool_size, self.server_settings = url, pool_size, server_settings
        self._pool: Any = None
        self._lock = asyncio.Lock()

    async def _get_pool(self) -> Any:
        import asyncpg

        async with self._lock:
            if self._pool is None:
                pool = await asyncpg.create_pool(
                    self.url,
                    min_size=1,
                    max_size=self.pool_size,
                    timeout=5,
                    command_timeout=10,
                    server_settings=self.server_settings,
                )
                try:
                    async with pool.acquire() as c, c.transaction():
                        await c.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK + 1)
                        for statement in _SCHEMA.format(ts="TIMESTAMPTZ").split(";"):
                            if statement.strip():
                                await c.execute(statement)
                        await c.execute("ALTER TABLE messages ADD COLUMN IF NOT EXISTS msg_id TEXT")
                        await c.execute(_MSG_ID_INDEX)
                except BaseException:
                    await pool.close()
                    raise
                self._pool = pool
        return self._pool

    async def _attempt(self, operation: Any) -> Any:
        import asyncpg

        for delay in (*RETRY_DELAYS, None):
            try:
                return await operation(await self._get_pool())
            except StoreError:
                raise
            except asyncpg.PostgresError as e:
                if not _transient(e):
                    raise StoreError(f"PostgreSQL: {e}") from e
                error: BaseException = e
            except Exception as e:
                if not _transient(e):
                    raise
                error = e
            if delay is None:
                raise StoreError(f"PostgreSQL unavailable: {error!r}") from error
            logger.warning("PostgreSQL unavailable (%r); retrying in %.1f s", error, delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        await self._attempt(lambda pool: pool.execute(_numbered(sql), *args))

    async def _fetch(self, sql: str, args: Sequence[Any] = ()) -> List[Dict[str, Any]]:
        rows = await self._attempt(lambda pool: pool.fetch(_numbered(sql), *args))
        return [dict(r) for r in rows]

    async def _next_seq_and_insert(
        self, conversation_id: str, sender: str, text: str, now: datetime
    ) -> int:
        msg_id = uuid.uuid4().hex  # the same on every retry: stored at most once

        async def insert(pool: Any) -> int:
            async with pool.acquire() as c, c.transaction():
                done = await c.fetchval("SELECT seq FROM messages WHERE msg_id = $1", msg_id)
                if done is not None:
                    return int(done)  # the first attempt committed before the connection broke
                seq = await c.fetchval(
                    "UPDATE conversations SET last_seq = last_seq + 1, updated_at = $1 "
                    "WHERE id = $2 RETURNING last_seq",
                    now,
                    conversation_id,
                )
                if seq is None:
                    raise StoreError(f"no conversation {conversation_id}")
                await c.execute(
                    "INSERT INTO messages (conversation_id, seq, sender, text, created_at, msg_id) "
                    "VALUES ($1, $2, $3, $4, $5, $6)",
                    conversation_id,
                    seq,
                    sender,
                    text,
                    now,
                    msg_id,
                )
                return int(seq)

        return int(await self._attempt(insert))

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def open_conversation_store(url: Optional[str] = None) -> ConversationStore:
    url = url or store_url()
    if url.startswith("sqlite:///"):
        return SQLiteConversationStore(Path(url[len("sqlite:///") :]))
    if url.startswith(("postgresql://", "postgres://")):
        import os

        return PostgresConversationStore(url, int(os.environ.get("KEFU_DB_POOL", "10")))
    raise StoreError(f"unsupported database URL scheme in {url.split('://')[0]}://…")
