"""The desk's store: conversations, their messages, agents and agent sessions.

It lives in the same database as the records (`KEFU_DATABASE_URL`; a SQLite file
by default, PostgreSQL at scale), on the same database layer (`kefu.store.sql`).
Messages carry a per-conversation sequence number, so a page that reconnects asks
for everything after the last number it saw and gets it in order, exactly once.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, List, Optional, Sequence

from kefu.store.sql import Database, StoreError, Transaction, open_database, utcnow

logger = logging.getLogger(__name__)
MODES = ("bot", "queued", "agent", "callback", "closed")
SENDERS = ("visitor", "bot", "agent")


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
    channel: str = "web"  # web, widget, wechat, wecom: where the visitor writes from
    channel_user: Optional[str] = None  # the platform's user id, masked (never the raw id)

    def as_listing(self) -> Dict[str, Any]:
        return {
            "conversation_id": self.id,
            "status": self.status,
            "reason": self.reason,
            "priority": self.priority,
            "waiting_since": self.waiting_since.isoformat() if self.waiting_since else None,
            "agent": self.agent,
            "summary": self.summary,
            "channel": self.channel,
            "channel_user": self.channel_user,
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
    "last_seq, idle_deadline, idle_prompts, updated_at, channel, channel_user"
)


SCHEMA = (
    "CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, token_hash TEXT NOT NULL, "
    "status TEXT NOT NULL, created_at {ts} NOT NULL, reason TEXT, "
    "priority INTEGER NOT NULL DEFAULT 0, waiting_since {ts}, agent TEXT, "
    "summary TEXT NOT NULL DEFAULT '{{}}', last_seq INTEGER NOT NULL DEFAULT 0, "
    "idle_deadline {ts}, idle_prompts INTEGER NOT NULL DEFAULT 0, updated_at {ts})",
    "CREATE INDEX IF NOT EXISTS conversations_status "
    "ON conversations (status, priority, waiting_since)",
    "CREATE INDEX IF NOT EXISTS conversations_idle ON conversations (status, idle_deadline)",
    "CREATE TABLE IF NOT EXISTS messages (conversation_id TEXT NOT NULL, seq INTEGER NOT NULL, "
    "sender TEXT NOT NULL, text TEXT NOT NULL, created_at {ts} NOT NULL, msg_id TEXT, "
    "PRIMARY KEY (conversation_id, seq))",
    "CREATE TABLE IF NOT EXISTS agents (username TEXT PRIMARY KEY, "
    "password_hash TEXT NOT NULL, display_name TEXT NOT NULL, last_seen {ts})",
    "CREATE TABLE IF NOT EXISTS agent_sessions (token_hash TEXT PRIMARY KEY, "
    "username TEXT NOT NULL, expires_at {ts} NOT NULL)",
)
MSG_ID_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS messages_msg_id ON messages (msg_id)"
# Added after the first stores were made: each gets its column on first use (see _ready).
CHANNEL_COLUMNS = {
    "channel": "TEXT NOT NULL DEFAULT 'web'",
    "channel_user": "TEXT",
}
FIELDS = frozenset(
    {
        "status",
        "reason",
        "priority",
        "waiting_since",
        "agent",
        "summary",
        "idle_deadline",
        "idle_prompts",
    }
)


class ConversationStore:
    """Conversations, messages, agents and sessions: one set of SQL on either database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._migrated = False

    async def _ready(self) -> Database:
        if not self._migrated:
            await self.db.ensure_schema("conversations", SCHEMA)
            # Stores made before messages had an id of their own get the column and index.
            if "msg_id" not in await self.db.columns("messages"):
                await self.db.execute("ALTER TABLE messages ADD COLUMN msg_id TEXT")
            await self.db.execute(MSG_ID_INDEX)
            existing = await self.db.columns("conversations")
            for name, kind in CHANNEL_COLUMNS.items():
                if name not in existing:
                    await self._add_column(name, kind)
            self._migrated = True
        return self.db

    async def _add_column(self, name: str, kind: str) -> None:
        """ALTER TABLE ... ADD COLUMN; a replica that added it first is not an error."""
        try:
            await self.db.execute(f"ALTER TABLE conversations ADD COLUMN {name} {kind}")
        except StoreError:
            if name not in await self.db.columns("conversations"):
                raise

    async def _execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        return await (await self._ready()).execute(sql, args)

    async def _fetch(self, sql: str, args: Sequence[Any] = ()) -> List[Dict[str, Any]]:
        return await (await self._ready()).fetch(sql, args)

    async def close(self) -> None:
        await self.db.close()

    # --- conversations -----------------------------------------------------
    async def create_conversation(
        self,
        conversation_id: str,
        token_hash: str,
        channel: str = "web",
        channel_user: Optional[str] = None,
    ) -> Conversation:
        now = utcnow()
        await self._execute(
            "INSERT INTO conversations (id, token_hash, status, created_at, priority, summary, "
            "last_seq, idle_prompts, updated_at, channel, channel_user) "
            "VALUES (?, ?, 'bot', ?, 0, '{}', 0, 0, ?, ?, ?)",
            (conversation_id, token_hash, self._time(now), self._time(now), channel, channel_user),
        )
        return Conversation(
            conversation_id,
            token_hash,
            "bot",
            now,
            updated_at=now,
            channel=channel,
            channel_user=channel_user,
        )

    async def get(self, conversation_id: str) -> Optional[Conversation]:
        rows = await self._fetch(
            f"SELECT {_CONV_COLUMNS} FROM conversations WHERE id = ?", (conversation_id,)
        )
        return self._conversation(rows[0]) if rows else None

    def _assignments(self, values: Dict[str, Any]) -> tuple:
        unknown = set(values) - FIELDS
        if unknown:
            raise ValueError(f"unknown conversation fields {sorted(unknown)}")
        if values.get("status") is not None and values["status"] not in MODES:
            raise ValueError(f"unknown status {values['status']!r}")
        values = {**values, "updated_at": utcnow()}
        columns = ", ".join(f"{name} = ?" for name in values)
        return columns, [self._value(v) for v in values.values()]

    async def update(self, conversation_id: str, **values: Any) -> None:
        """Set columns that are not the status (reason, priority, summary, idle_*, ...)."""
        if "status" in values:
            raise ValueError("a status changes only by transition()")
        columns, args = self._assignments(values)
        await self._execute(
            f"UPDATE conversations SET {columns} WHERE id = ?", [*args, conversation_id]
        )

    async def transition(
        self, conversation_id: str, from_states: Sequence[str], **values: Any
    ) -> bool:
        """Changes the conversation only if its status is one of `from_states`, in one
        statement: of two desks (or two agents) racing, exactly one wins. True if it did."""
        if not from_states or any(state not in MODES for state in from_states):
            raise ValueError(f"unknown states {list(from_states)!r}")
        columns, args = self._assignments(values)
        marks = ", ".join("?" for _ in from_states)
        changed = await self._execute(
            f"UPDATE conversations SET {columns} WHERE id = ? AND status IN ({marks})",
            [*args, conversation_id, *from_states],
        )
        return changed == 1

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
        changed = await self._execute(
            "UPDATE conversations SET idle_deadline = ?, idle_prompts = idle_prompts + 1 "
            "WHERE id = ? AND status = 'bot' AND idle_prompts = ?",
            (
                self._time(deadline) if deadline else None,
                conversation.id,
                conversation.idle_prompts,
            ),
        )
        return changed == 1

    async def purge_closed_before(self, cutoff: datetime) -> int:
        """Retention: closed conversations last touched before `cutoff`, with their
        messages, in one transaction."""
        db = await self._ready()
        old = "SELECT id FROM conversations WHERE status = 'closed' AND updated_at < ?"

        async def purge(tx: Transaction) -> int:
            args = (self._time(cutoff),)
            await tx.execute(f"DELETE FROM messages WHERE conversation_id IN ({old})", args)
            return await tx.execute(f"DELETE FROM conversations WHERE id IN ({old})", args)

        return await db.transaction(purge)

    # --- messages ----------------------------------------------------------
    async def add_message(self, conversation_id: str, sender: str, text: str) -> Message:
        if sender not in SENDERS:
            raise ValueError(f"unknown sender {sender!r}")
        db = await self._ready()
        now = utcnow()
        msg_id = uuid.uuid4().hex  # the same on every retry: stored at most once

        async def insert(tx: Transaction) -> int:
            done = await tx.fetch("SELECT seq FROM messages WHERE msg_id = ?", (msg_id,))
            if done:
                return int(done[0]["seq"])  # committed before the connection broke
            rows = await tx.fetch(
                "UPDATE conversations SET last_seq = last_seq + 1, updated_at = ? "
                "WHERE id = ? RETURNING last_seq",
                (self._time(now), conversation_id),
            )
            if not rows:
                raise StoreError(f"no conversation {conversation_id}")
            seq = int(rows[0]["last_seq"])
            await tx.execute(
                "INSERT INTO messages (conversation_id, seq, sender, text, created_at, msg_id) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (conversation_id, seq, sender, text, self._time(now), msg_id),
            )
            return seq

        seq = await db.transaction(insert)
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
        return self.db.time(value)

    def _dt(self, value: Any) -> Optional[datetime]:
        return self.db.datetime(value)

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
            channel=r.get("channel") or "web",
            channel_user=r.get("channel_user"),
        )


def open_conversation_store(url: Optional[str] = None) -> ConversationStore:
    return ConversationStore(open_database(url))
