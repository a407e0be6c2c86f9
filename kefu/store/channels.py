"""What the channels keep: which conversation each platform user is in, which inbound
message ids were seen (so a platform's retry is answered once, on any desk replica),
small named values (access tokens, sync cursors), and failed deliveries.

It lives in the same database as the conversations, on the same database layer.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Dict, List, Optional, Sequence

from kefu.store.sql import Database, utcnow

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS channel_links (channel TEXT NOT NULL, external_id TEXT NOT NULL, "
    "conversation_id TEXT NOT NULL, created_at {ts} NOT NULL, PRIMARY KEY (channel, external_id))",
    "CREATE INDEX IF NOT EXISTS channel_links_conversation ON channel_links (conversation_id)",
    "CREATE TABLE IF NOT EXISTS channel_inbound (channel TEXT NOT NULL, msg_key TEXT NOT NULL, "
    "created_at {ts} NOT NULL, PRIMARY KEY (channel, msg_key))",
    "CREATE TABLE IF NOT EXISTS channel_state (channel TEXT NOT NULL, name TEXT NOT NULL, "
    "value TEXT NOT NULL, expires_at {ts}, PRIMARY KEY (channel, name))",
    "CREATE TABLE IF NOT EXISTS channel_failures (conversation_id TEXT NOT NULL, "
    "seq INTEGER NOT NULL, channel TEXT NOT NULL, detail TEXT NOT NULL, created_at {ts} NOT NULL, "
    "PRIMARY KEY (conversation_id, seq))",
)


class ChannelStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def _ready(self) -> Database:
        await self.db.ensure_schema("channels", SCHEMA)
        return self.db

    async def _execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        return await (await self._ready()).execute(sql, args)

    async def _fetch(self, sql: str, args: Sequence[Any] = ()) -> List[Dict[str, Any]]:
        return await (await self._ready()).fetch(sql, args)

    # --- platform users and their conversation ------------------------------------
    async def conversation_of(self, channel: str, external_id: str) -> Optional[str]:
        rows = await self._fetch(
            "SELECT conversation_id FROM channel_links WHERE channel = ? AND external_id = ?",
            (channel, external_id),
        )
        return rows[0]["conversation_id"] if rows else None

    async def link(
        self, channel: str, external_id: str, conversation_id: str, replacing: Optional[str]
    ) -> bool:
        """Points the user at `conversation_id`, only if it still points at `replacing`
        (None: only if it points nowhere yet). Of two replicas racing, one wins."""
        if replacing is None:
            changed = await self._execute(
                "INSERT INTO channel_links (channel, external_id, conversation_id, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (channel, external_id) DO NOTHING",
                (channel, external_id, conversation_id, self.db.time(utcnow())),
            )
        else:
            changed = await self._execute(
                "UPDATE channel_links SET conversation_id = ?, created_at = ? "
                "WHERE channel = ? AND external_id = ? AND conversation_id = ?",
                (conversation_id, self.db.time(utcnow()), channel, external_id, replacing),
            )
        return changed == 1

    async def external_of(self, channel: str, conversation_id: str) -> Optional[str]:
        rows = await self._fetch(
            "SELECT external_id FROM channel_links WHERE channel = ? AND conversation_id = ?",
            (channel, conversation_id),
        )
        return rows[0]["external_id"] if rows else None

    # --- inbound message ids ---------------------------------------------------------
    async def first_time(self, channel: str, msg_key: str) -> bool:
        """True the first time this message id is seen (on any replica), False after."""
        changed = await self._execute(
            "INSERT INTO channel_inbound (channel, msg_key, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (channel, msg_key) DO NOTHING",
            (channel, msg_key, self.db.time(utcnow())),
        )
        return changed == 1

    async def forget_inbound_before(self, cutoff: datetime) -> int:
        return await self._execute(
            "DELETE FROM channel_inbound WHERE created_at < ?", (self.db.time(cutoff),)
        )

    # --- named values (tokens, cursors) ------------------------------------------------
    async def get_value(self, channel: str, name: str) -> Optional[str]:
        rows = await self._fetch(
            "SELECT value, expires_at FROM channel_state WHERE channel = ? AND name = ?",
            (channel, name),
        )
        if not rows:
            return None
        expires = self.db.datetime(rows[0]["expires_at"])
        if expires is not None and expires <= utcnow():
            return None
        return str(rows[0]["value"])

    async def set_value(
        self, channel: str, name: str, value: str, expires_at: Optional[datetime] = None
    ) -> None:
        await self._execute(
            "INSERT INTO channel_state (channel, name, value, expires_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (channel, name) DO UPDATE SET value = excluded.value, "
            "expires_at = excluded.expires_at",
            (channel, name, value, self.db.time(expires_at)),
        )

    async def replace_value(self, channel: str, name: str, old: Optional[str], new: str) -> bool:
        """Compare-and-set: of two replicas moving a cursor on, one wins."""
        if old is None:
            changed = await self._execute(
                "INSERT INTO channel_state (channel, name, value) VALUES (?, ?, ?) "
                "ON CONFLICT (channel, name) DO NOTHING",
                (channel, name, new),
            )
        else:
            changed = await self._execute(
                "UPDATE channel_state SET value = ? WHERE channel = ? AND name = ? AND value = ?",
                (new, channel, name, old),
            )
        return changed == 1

    # --- deliveries that failed ----------------------------------------------------------
    async def add_failure(
        self, conversation_id: str, seq: int, channel: str, detail: Dict[str, Any]
    ) -> None:
        await self._execute(
            "INSERT INTO channel_failures (conversation_id, seq, channel, detail, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (conversation_id, seq) DO UPDATE SET "
            "detail = excluded.detail",
            (
                conversation_id,
                seq,
                channel,
                json.dumps(detail, ensure_ascii=False),
                self.db.time(utcnow()),
            ),
        )

    async def failures(self, conversation_id: str) -> List[Dict[str, Any]]:
        rows = await self._fetch(
            "SELECT seq, detail FROM channel_failures WHERE conversation_id = ? ORDER BY seq",
            (conversation_id,),
        )
        return [{"seq": int(r["seq"]), **json.loads(r["detail"])} for r in rows]
