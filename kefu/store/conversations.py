"""The desk's store: conversations, their messages, agents and agent sessions.

It lives in the same database as the records (`KEFU_DATABASE_URL`; a SQLite file
by default, PostgreSQL at scale), on the same database layer (`kefu.store.sql`).
Messages carry a per-conversation sequence number, so a page that reconnects asks
for everything after the last number it saw and gets it in order, exactly once.
"""

from __future__ import annotations

import asyncio
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
    assigned_at: Optional[datetime] = None
    assignment: Optional[str] = None  # how the agent got it: auto, claim, transfer
    first_response_due: Optional[datetime] = None  # while a person's first reply is due
    first_response_s: Optional[float] = None  # once it came
    sla_breached: int = 0
    channel: str = "web"  # web, widget, wechat, wecom: where the visitor writes from
    channel_user: Optional[str] = None  # the platform's user id, masked (never the raw id)

    def as_listing(self) -> Dict[str, Any]:
        def iso(value: Optional[datetime]) -> Optional[str]:
            return value.isoformat() if value else None

        return {
            "conversation_id": self.id,
            "status": self.status,
            "reason": self.reason,
            "priority": self.priority,
            "waiting_since": iso(self.waiting_since),
            "agent": self.agent,
            "summary": self.summary,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "assigned_at": iso(self.assigned_at),
            "first_response_due": iso(self.first_response_due),
            "first_response_s": (
                round(self.first_response_s, 1) if self.first_response_s is not None else None
            ),
            "last_seq": self.last_seq,
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


ROLES = ("agent", "supervisor")
AGENT_STATUSES = ("online", "away", "offline")
DEFAULT_CAPACITY = 5


@dataclass(frozen=True)
class Agent:
    username: str
    password_hash: str
    display_name: str
    last_seen: Optional[datetime]
    role: str = "agent"
    capacity: int = DEFAULT_CAPACITY
    status: str = "away"  # as set; `offline` too once the console has not been seen


_CONV_COLUMNS = (
    "id, token_hash, status, created_at, reason, priority, waiting_since, agent, summary, "
    "last_seq, idle_deadline, idle_prompts, updated_at, assigned_at, assignment, "
    "first_response_due, first_response_s, sla_breached, channel, channel_user"
)
_AGENT_COLUMNS = "username, password_hash, display_name, last_seen, role, capacity, status"


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
    # What happened to a conversation, for the supervisor's metrics and the quality review:
    # handoff (reason), assigned / claimed / reassigned / transferred (agent, value: seconds
    # waited), first_response (value: seconds), sla_breach, blocked (a reply the checker
    # refused: data), rating (value).
    "CREATE TABLE IF NOT EXISTS conversation_events (id {serial}, "
    "conversation_id TEXT NOT NULL, kind TEXT NOT NULL, at {ts} NOT NULL, agent TEXT, "
    "reason TEXT, value DOUBLE PRECISION, data TEXT)",
    "CREATE INDEX IF NOT EXISTS conversation_events_kind ON conversation_events (kind, at)",
    "CREATE INDEX IF NOT EXISTS conversation_events_conversation "
    "ON conversation_events (conversation_id)",
)
CHANNEL_COLUMNS = {
    "channel": "TEXT NOT NULL DEFAULT 'web'",
    "channel_user": "TEXT",
}
# Columns added after the first release: an older store gets them on start.
ADDED_COLUMNS = {
    "conversations": (
        ("assigned_at", "{ts}"),
        ("assignment", "TEXT"),
        ("first_response_due", "{ts}"),
        ("first_response_s", "DOUBLE PRECISION"),
        ("sla_breached", "INTEGER NOT NULL DEFAULT 0"),
        *CHANNEL_COLUMNS.items(),
    ),
    "agents": (
        ("role", "TEXT NOT NULL DEFAULT 'agent'"),
        ("capacity", "INTEGER NOT NULL DEFAULT 5"),
        ("status", "TEXT NOT NULL DEFAULT 'away'"),
        ("status_at", "{ts}"),
        ("last_assigned_at", "{ts}"),
    ),
}
EVENT_KINDS = (
    "handoff",
    "assigned",
    "claimed",
    "reassigned",
    "transferred",
    "first_response",
    "sla_breach",
    "blocked",
    "rating",
)
MSG_ID_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS messages_msg_id ON messages (msg_id)"
MIGRATION_ATTEMPTS = 3
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
        "assigned_at",
        "assignment",
        "first_response_due",
        "first_response_s",
        "sla_breached",
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
            # Two replicas starting together race on PostgreSQL's catalogue (CREATE INDEX
            # IF NOT EXISTS is not safe concurrently): the loser tries again, and finds
            # the winner's work done.
            for attempt in range(MIGRATION_ATTEMPTS):
                try:
                    await self._migrate()
                    break
                except StoreError:
                    if attempt + 1 == MIGRATION_ATTEMPTS:
                        raise
                    await asyncio.sleep(0.2 * (attempt + 1))
            self._migrated = True
        return self.db

    async def _migrate(self) -> None:
        # Stores made before messages had an id of their own get the column and index.
        if "msg_id" not in await self.db.columns("messages"):
            try:
                await self.db.execute("ALTER TABLE messages ADD COLUMN msg_id TEXT")
            except StoreError:
                if "msg_id" not in await self.db.columns("messages"):
                    raise
        await self.db.execute(MSG_ID_INDEX)
        for table, added in ADDED_COLUMNS.items():
            await self._add_columns(table, added)

    async def _add_columns(self, table: str, added: Sequence[tuple]) -> None:
        for name, kind in added:
            if name in await self.db.columns(table):
                continue
            try:
                await self.db.execute(self.db.sql(f"ALTER TABLE {table} ADD COLUMN {name} {kind}"))
            except StoreError:
                if name not in await self.db.columns(table):  # not another replica's doing
                    raise

    async def query(self, sql: str, args: Sequence[Any] = ()) -> List[Dict[str, Any]]:
        """Rows of a read-only query on the desk's tables (the supervisor's metrics)."""
        return await self._fetch(sql, args)

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
        self,
        conversation_id: str,
        from_states: Sequence[str],
        *,
        held_by: Optional[str] = None,
        **values: Any,
    ) -> bool:
        """Changes the conversation only if its status is one of `from_states` (and, with
        `held_by`, only while that agent has it), in one statement: of two desks (or two
        agents) racing, exactly one wins. True if it did."""
        db = await self._ready()
        return await db.transaction(
            lambda tx: self._transition(tx, conversation_id, from_states, held_by, values)
        )

    async def _transition(
        self,
        tx: Transaction,
        conversation_id: str,
        from_states: Sequence[str],
        held_by: Optional[str],
        values: Dict[str, Any],
    ) -> bool:
        if not from_states or any(state not in MODES for state in from_states):
            raise ValueError(f"unknown states {list(from_states)!r}")
        columns, args = self._assignments(values)
        marks = ", ".join("?" for _ in from_states)
        held = " AND agent = ?" if held_by is not None else ""
        changed = await tx.execute(
            f"UPDATE conversations SET {columns} WHERE id = ? AND status IN ({marks}){held}",
            [*args, conversation_id, *from_states, *([held_by] if held_by is not None else [])],
        )
        return changed == 1

    async def assign(
        self,
        conversation_id: str,
        agent: str,
        from_states: Sequence[str],
        online_since: datetime,
        *,
        held_by: Optional[str] = None,
        **values: Any,
    ) -> str:
        """Gives the conversation to `agent` if that agent is online (seen since
        `online_since`) with free capacity: one transaction that locks the agent's row, so
        two desks cannot both fill the last place, and one conditional update of the
        conversation. `ok`, `unavailable` (offline or full) or `conflict` (the
        conversation was not in `from_states` any more)."""
        db = await self._ready()
        now = utcnow()

        async def work(tx: Transaction) -> str:
            rows = await tx.fetch(
                db.sql(
                    "SELECT status, capacity, last_seen FROM agents WHERE username = ?{for_update}"
                ),
                (agent,),
            )
            if not rows or rows[0]["status"] != "online":
                return "unavailable"
            seen = self._dt(rows[0]["last_seen"])
            if seen is None or seen < online_since:
                return "unavailable"
            active = await tx.fetch(
                "SELECT COUNT(*) AS n FROM conversations WHERE status = 'agent' AND agent = ? "
                "AND id <> ?",
                (agent, conversation_id),
            )
            if int(active[0]["n"]) >= int(rows[0]["capacity"]):
                return "unavailable"
            changed = await self._transition(
                tx,
                conversation_id,
                from_states,
                held_by,
                {**values, "status": "agent", "agent": agent},
            )
            if not changed:
                return "conflict"
            await tx.execute(
                "UPDATE agents SET last_assigned_at = ? WHERE username = ?",
                (self._time(now), agent),
            )
            return "ok"

        return await db.transaction(work)

    async def next_agent(
        self, online_since: datetime, exclude: Sequence[str] = ()
    ) -> Optional[str]:
        """The online agent with free capacity and the fewest active conversations; of
        equals, the one whose last assignment (or status change) is longest ago."""
        active = (
            "(SELECT COUNT(*) FROM conversations c WHERE c.status = 'agent' "
            "AND c.agent = a.username)"
        )
        marks = "".join(" AND a.username <> ?" for _ in exclude)
        rows = await self._fetch(
            f"SELECT a.username FROM agents a WHERE a.status = 'online' AND a.last_seen >= ?"
            f"{marks} AND {active} < a.capacity ORDER BY {active}, "
            "COALESCE(a.last_assigned_at, a.status_at, a.last_seen), a.username LIMIT 1",
            (self._time(online_since), *exclude),
        )
        return rows[0]["username"] if rows else None

    async def next_queued(self, limit: int = 20) -> List[Conversation]:
        """The queue in the order it is served: priority, then waiting time."""
        rows = await self._fetch(
            f"SELECT {_CONV_COLUMNS} FROM conversations WHERE status = 'queued' "
            "ORDER BY priority DESC, waiting_since ASC LIMIT ?",
            (limit,),
        )
        return [self._conversation(r) for r in rows]

    async def unanswered_since(self, cutoff: datetime, limit: int = 50) -> List[Conversation]:
        """Conversations the desk assigned at or before `cutoff` whose agent has not
        replied yet."""
        rows = await self._fetch(
            f"SELECT {_CONV_COLUMNS} FROM conversations WHERE status = 'agent' "
            "AND assignment = 'auto' AND first_response_due IS NOT NULL "
            "AND assigned_at <= ? ORDER BY assigned_at LIMIT ?",
            (self._time(cutoff), limit),
        )
        return [self._conversation(r) for r in rows]

    async def first_response_overdue(self, now: datetime, limit: int = 50) -> List[Conversation]:
        rows = await self._fetch(
            f"SELECT {_CONV_COLUMNS} FROM conversations WHERE status IN ('queued', 'agent') "
            "AND first_response_due IS NOT NULL AND first_response_due <= ? "
            "AND sla_breached = 0 ORDER BY first_response_due LIMIT ?",
            (self._time(now), limit),
        )
        return [self._conversation(r) for r in rows]

    async def mark_breached(self, conversation_id: str) -> bool:
        """Once per wait: of replicas racing on the same breach, one wins."""
        changed = await self._execute(
            "UPDATE conversations SET sla_breached = 1 WHERE id = ? AND sla_breached = 0 "
            "AND first_response_due IS NOT NULL",
            (conversation_id,),
        )
        return changed == 1

    async def answered(self, conversation_id: str, agent: str, now: datetime) -> Optional[float]:
        """The agent's first reply: the seconds since the hand-over, stored once (None when
        it was not the first)."""
        db = await self._ready()

        async def work(tx: Transaction) -> Optional[float]:
            rows = await tx.fetch(
                db.sql(
                    "SELECT waiting_since, first_response_due FROM conversations "
                    "WHERE id = ?{for_update}"
                ),
                (conversation_id,),
            )
            if not rows or rows[0]["first_response_due"] is None:
                return None
            since = self._dt(rows[0]["waiting_since"]) or now
            seconds = max(0.0, (now - since).total_seconds())
            await tx.execute(
                "UPDATE conversations SET first_response_due = NULL, first_response_s = ? "
                "WHERE id = ?",
                (seconds, conversation_id),
            )
            await self._event(
                tx, conversation_id, "first_response", now, agent=agent, value=seconds
            )
            return seconds

        return await db.transaction(work)

    # --- events ------------------------------------------------------------
    async def add_event(
        self,
        conversation_id: str,
        kind: str,
        agent: Optional[str] = None,
        reason: Optional[str] = None,
        value: Optional[float] = None,
        data: Optional[Dict[str, Any]] = None,
    ) -> None:
        db = await self._ready()
        now = utcnow()
        await db.transaction(
            lambda tx: self._event(tx, conversation_id, kind, now, agent, reason, value, data)
        )

    async def _event(
        self,
        tx: Transaction,
        conversation_id: str,
        kind: str,
        at: datetime,
        agent: Optional[str] = None,
        reason: Optional[str] = None,
        value: Optional[float] = None,
        data: Optional[Dict[str, Any]] = None,
    ) -> None:
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        await tx.execute(
            "INSERT INTO conversation_events (conversation_id, kind, at, agent, reason, value, "
            "data) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                conversation_id,
                kind,
                self._time(at),
                agent,
                reason,
                value,
                json.dumps(data, ensure_ascii=False) if data is not None else None,
            ),
        )

    async def events(self, conversation_id: str) -> List[Dict[str, Any]]:
        rows = await self._fetch(
            "SELECT kind, at, agent, reason, value, data FROM conversation_events "
            "WHERE conversation_id = ? ORDER BY id",
            (conversation_id,),
        )
        return [
            {
                **r,
                "at": self._dt(r["at"]),
                "data": json.loads(r["data"]) if r["data"] else None,
            }
            for r in rows
        ]

    # --- what the consoles list --------------------------------------------
    VIEWS = {
        "queue": "status = 'queued'",
        "mine": "status = 'agent' AND agent = ?",
        "callback": "status = 'callback'",
        "closed": "status = 'closed' AND reason IS NOT NULL",
        "others": "status = 'agent' AND agent <> ?",
    }

    async def view(self, name: str, username: str, limit: int = 100) -> List[Conversation]:
        """One of the console's lists: the live queue by priority then waiting time; mine,
        call-backs and the closed ones newest first."""
        where = self.VIEWS[name]
        live = name in ("queue", "mine", "others")
        order = "priority DESC, waiting_since ASC" if live else "updated_at DESC"
        args: List[Any] = [username] if "?" in where else []
        rows = await self._fetch(
            f"SELECT {_CONV_COLUMNS} FROM conversations WHERE {where} ORDER BY {order} LIMIT ?",
            (*args, limit),
        )
        return [self._conversation(r) for r in rows]

    async def view_counts(self, username: str) -> Dict[str, int]:
        rows = await self._fetch(
            "SELECT SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END) AS queue, "
            "SUM(CASE WHEN status = 'agent' AND agent = ? THEN 1 ELSE 0 END) AS mine, "
            "SUM(CASE WHEN status = 'callback' THEN 1 ELSE 0 END) AS callback, "
            "SUM(CASE WHEN status = 'closed' THEN 1 ELSE 0 END) AS closed, "
            "SUM(CASE WHEN status = 'agent' AND agent <> ? THEN 1 ELSE 0 END) AS others "
            "FROM conversations WHERE status <> 'bot' AND reason IS NOT NULL",
            (username, username),
        )
        return {k: int(v or 0) for k, v in rows[0].items()}

    async def search(self, text: str, limit: int = 30) -> List[Conversation]:
        """By conversation id (or its start), or a phone number or order id in the summary
        or in what was said."""
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = await self._fetch(
            f"SELECT {_CONV_COLUMNS} FROM conversations c WHERE c.id LIKE ? ESCAPE '\\' "
            "OR c.summary LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages m "
            "WHERE m.conversation_id = c.id AND m.text LIKE ? ESCAPE '\\') "
            "ORDER BY c.updated_at DESC LIMIT ?",
            (text.replace("%", "").replace("_", "") + "%", like, like, limit),
        )
        return [self._conversation(r) for r in rows]

    async def handled_and_closed(self, since: datetime, limit: int = 100) -> List[Conversation]:
        """Closed since `since`, after a person had them (newest first)."""
        rows = await self._fetch(
            f"SELECT {_CONV_COLUMNS} FROM conversations c WHERE c.status = 'closed' "
            "AND c.updated_at >= ? AND EXISTS (SELECT 1 FROM conversation_events e "
            "WHERE e.conversation_id = c.id AND e.kind IN ('assigned', 'claimed', "
            "'transferred')) ORDER BY c.updated_at DESC LIMIT ?",
            (self._time(since), limit),
        )
        return [self._conversation(r) for r in rows]

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
    async def upsert_agent(
        self, username: str, password_hash: str, display_name: str, role: str = "agent"
    ) -> None:
        """A configured account (KEFU_AGENTS): created, or its password and role renewed."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        await self._execute(
            "INSERT INTO agents (username, password_hash, display_name, role) "
            "VALUES (?, ?, ?, ?) "
            "ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, "
            "display_name = excluded.display_name, role = excluded.role",
            (username, password_hash, display_name, role),
        )

    async def create_agent(
        self, username: str, password_hash: str, role: str, capacity: int
    ) -> bool:
        """A new account; False when the name is taken (one statement: no race)."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        changed = await self._execute(
            "INSERT INTO agents (username, password_hash, display_name, role, capacity) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (username) DO NOTHING",
            (username, password_hash, username, role, capacity),
        )
        return changed == 1

    def _agent(self, r: Dict[str, Any]) -> Agent:
        return Agent(
            r["username"],
            r["password_hash"],
            r["display_name"],
            self._dt(r["last_seen"]),
            role=r["role"],
            capacity=int(r["capacity"]),
            status=r["status"],
        )

    async def agent(self, username: str) -> Optional[Agent]:
        rows = await self._fetch(
            f"SELECT {_AGENT_COLUMNS} FROM agents WHERE username = ?", (username,)
        )
        return self._agent(rows[0]) if rows else None

    async def agents(self) -> List[Agent]:
        rows = await self._fetch(f"SELECT {_AGENT_COLUMNS} FROM agents ORDER BY username")
        return [self._agent(r) for r in rows]

    async def set_agent_status(self, username: str, status: str) -> None:
        if status not in AGENT_STATUSES:
            raise ValueError(f"unknown agent status {status!r}")
        now = self._time(utcnow())
        await self._execute(
            "UPDATE agents SET status = ?, status_at = ?, last_seen = ? WHERE username = ?",
            (status, now, now, username),
        )

    async def present(self, username: str) -> None:
        """A login: an agent who had gone offline is back, but takes no chat until online."""
        now = self._time(utcnow())
        await self._execute(
            "UPDATE agents SET status = 'away', status_at = ? "
            "WHERE username = ? AND status = 'offline'",
            (now, username),
        )

    async def roster(self, online_since: datetime) -> List[Dict[str, Any]]:
        """Every account with the status it has now (`offline` once its console has not
        been seen since `online_since`) and the conversations it holds."""
        rows = await self._fetch(
            "SELECT a.username, a.role, a.capacity, CASE WHEN a.last_seen IS NULL "
            "OR a.last_seen < ? THEN 'offline' ELSE a.status END AS status, "
            "(SELECT COUNT(*) FROM conversations c WHERE c.status = 'agent' "
            "AND c.agent = a.username) AS active FROM agents a ORDER BY a.username",
            (self._time(online_since),),
        )
        return [
            {
                "username": r["username"],
                "role": r["role"],
                "status": r["status"],
                "active": int(r["active"]),
                "capacity": int(r["capacity"]),
            }
            for r in rows
        ]

    async def end_sessions(self, username: str, token_hash: str) -> None:
        await self._execute(
            "DELETE FROM agent_sessions WHERE token_hash = ? AND username = ?",
            (token_hash, username),
        )

    async def touch_agent(self, username: str) -> None:
        await self._execute(
            "UPDATE agents SET last_seen = ? WHERE username = ?", (self._time(utcnow()), username)
        )

    async def agents_seen_since(self, since: datetime) -> int:
        """Agents present: seen since `since` and not signed off (`offline`)."""
        rows = await self._fetch(
            "SELECT COUNT(*) AS n FROM agents WHERE last_seen >= ? AND status <> 'offline'",
            (self._time(since),),
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
            assigned_at=self._dt(r["assigned_at"]),
            assignment=r["assignment"],
            first_response_due=self._dt(r["first_response_due"]),
            first_response_s=(
                float(r["first_response_s"]) if r["first_response_s"] is not None else None
            ),
            sla_breached=int(r["sla_breached"] or 0),
            channel=r.get("channel") or "web",
            channel_user=r.get("channel_user"),
        )


def open_conversation_store(url: Optional[str] = None) -> ConversationStore:
    return ConversationStore(open_database(url))
