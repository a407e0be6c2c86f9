"""What the review inbox reads from the desk's store, and the agents' corrections.

A correction is an agent saying "the bot got this wrong" about one visitor message,
with the intent they meant (reason `corrected` in `kefu review list`). It lives in the
desk's database beside the conversations (SQLite or PostgreSQL, the same SQL).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, List, Optional, Sequence

from kefu.store.sql import Database, open_database, utcnow

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS review_corrections (conversation_id TEXT NOT NULL, "
    "seq INTEGER NOT NULL, text TEXT NOT NULL, intent TEXT NOT NULL, agent TEXT NOT NULL, "
    "created_at {ts} NOT NULL, PRIMARY KEY (conversation_id, seq))",
    "CREATE INDEX IF NOT EXISTS review_corrections_time ON review_corrections (created_at)",
)


@dataclass(frozen=True)
class StoredMessage:
    conversation_id: str
    seq: int
    sender: str
    text: str
    created_at: datetime


@dataclass(frozen=True)
class Correction:
    conversation_id: str
    seq: int
    text: str
    intent: str
    agent: str
    created_at: datetime


class ReviewStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def _ready(self) -> Database:
        await self.db.ensure_schema("review_corrections", SCHEMA)
        return self.db

    async def close(self) -> None:
        await self.db.close()

    async def correct(
        self, conversation_id: str, seq: int, text: str, intent: str, agent: str
    ) -> Correction:
        """Flags a visitor message; flagging it again replaces the intent."""
        db = await self._ready()
        now = utcnow()
        await db.execute(
            "INSERT INTO review_corrections (conversation_id, seq, text, intent, agent, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (conversation_id, seq) DO "
            "UPDATE SET intent = excluded.intent, agent = excluded.agent, "
            "created_at = excluded.created_at",
            (conversation_id, seq, text, intent, agent, db.time(now)),
        )
        return Correction(conversation_id, seq, text, intent, agent, now)

    async def corrections(self, since: Optional[datetime] = None) -> List[Correction]:
        db = await self._ready()
        rows = await db.fetch(
            "SELECT conversation_id, seq, text, intent, agent, created_at "
            "FROM review_corrections WHERE created_at >= ? ORDER BY created_at",
            (db.time(since or datetime.min.replace(tzinfo=utcnow().tzinfo)),),
        )
        return [
            Correction(
                r["conversation_id"],
                int(r["seq"]),
                r["text"],
                r["intent"],
                r["agent"],
                db.datetime(r["created_at"]) or utcnow(),
            )
            for r in rows
        ]

    async def handed_over_for(
        self, reason: str, since: Optional[datetime] = None
    ) -> List[Dict[str, Any]]:
        """Conversations handed over with `reason` (now, or before a more urgent reason
        replaced it): their id and when the hand-over happened."""
        db = self.db
        if "conversations" not in await self._tables():
            return []
        rows = await db.fetch(
            "SELECT id, reason, summary, waiting_since, updated_at FROM conversations "
            "WHERE reason IS NOT NULL AND waiting_since IS NOT NULL AND waiting_since >= ?",
            (db.time(since or datetime.min.replace(tzinfo=utcnow().tzinfo)),),
        )
        out = []
        for r in rows:
            summary = str(r["summary"] or "")
            if r["reason"] == reason or f'"reason_upgraded_from": "{reason}"' in summary:
                out.append({"conversation_id": r["id"], "at": db.datetime(r["waiting_since"])})
        return out

    async def messages(
        self, conversation_ids: Sequence[str], sender: Optional[str] = None
    ) -> List[StoredMessage]:
        """The messages of these conversations, in order."""
        if not conversation_ids or "messages" not in await self._tables():
            return []
        out: List[StoredMessage] = []
        ids = list(dict.fromkeys(conversation_ids))
        for start in range(0, len(ids), 200):
            chunk = ids[start : start + 200]
            marks = ", ".join("?" for _ in chunk)
            extra = " AND sender = ?" if sender else ""
            rows = await self.db.fetch(
                "SELECT conversation_id, seq, sender, text, created_at FROM messages "
                f"WHERE conversation_id IN ({marks}){extra} ORDER BY conversation_id, seq",
                [*chunk, *([sender] if sender else [])],
            )
            out += [
                StoredMessage(
                    r["conversation_id"],
                    int(r["seq"]),
                    r["sender"],
                    r["text"],
                    self.db.datetime(r["created_at"]) or utcnow(),
                )
                for r in rows
            ]
        return out

    async def message(self, conversation_id: str, seq: int) -> Optional[StoredMessage]:
        rows = await self.db.fetch(
            "SELECT conversation_id, seq, sender, text, created_at FROM messages "
            "WHERE conversation_id = ? AND seq = ?",
            (conversation_id, seq),
        )
        if not rows:
            return None
        r = rows[0]
        when = self.db.datetime(r["created_at"]) or utcnow()
        return StoredMessage(r["conversation_id"], int(r["seq"]), r["sender"], r["text"], when)

    async def _tables(self) -> set:
        if self.db.dialect == "sqlite":
            rows = await self.db.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")
            return {r["name"] for r in rows}
        rows = await self.db.fetch(
            "SELECT table_name AS name FROM information_schema.tables "
            "WHERE table_schema = current_schema()"
        )
        return {r["name"] for r in rows}


def open_review_store(url: Optional[str] = None) -> ReviewStore:
    return ReviewStore(open_database(url))
