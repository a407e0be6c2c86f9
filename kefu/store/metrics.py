"""The supervisor's figures, computed by the database (SQL), never by loading every
conversation: counts, rates, percentiles (nearest rank, with window functions that SQLite
and PostgreSQL share), and the satisfaction ratings from the records."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Optional, Sequence

from kefu.store import records
from kefu.store.conversations import ConversationStore

# Waiting and first-response times are grouped into these buckets (seconds) for charts.
BUCKETS = (15, 30, 60, 120, 300, 600)


def _ratio(part: int, whole: int) -> Optional[float]:
    return round(part / whole, 3) if whole else None


async def percentiles(
    store: ConversationStore, kinds: Sequence[str], since: datetime
) -> Dict[str, Optional[float]]:
    """p50 and p90 of the events' values: the value at rank ceil(p * n)."""
    marks = ", ".join("?" for _ in kinds)
    rows = await store.query(
        "SELECT MAX(CASE WHEN rn = (50 * n + 99) / 100 THEN value END) AS p50, "
        "MAX(CASE WHEN rn = (90 * n + 99) / 100 THEN value END) AS p90 FROM ("
        "SELECT value, ROW_NUMBER() OVER (ORDER BY value) AS rn, COUNT(*) OVER () AS n "
        f"FROM conversation_events WHERE kind IN ({marks}) AND at >= ? "
        "AND value IS NOT NULL) ranked",
        (*kinds, store.db.time(since)),
    )
    row = rows[0] if rows else {}
    return {
        key: round(float(row[key]), 1) if row.get(key) is not None else None
        for key in ("p50", "p90")
    }


async def _csat_rows(
    store: ConversationStore, since: datetime, select: str, tail: str = ""
) -> List[Dict]:
    """Survey ratings (the records' `score`, from the desk or the bot's survey)."""
    db = store.db
    await db.ensure_schema("records", records.SCHEMA)
    score = db.json_number("data", "score")
    return await store.query(
        select.format(score=score) + " FROM records WHERE kind = 'survey' AND created_at >= ? "
        f"AND {score} BETWEEN 1 AND 5" + tail,
        (db.time(since),),
    )


async def metrics(
    store: ConversationStore, since: datetime, online_since: datetime
) -> Dict[str, Any]:
    """`GET /api/supervisor/metrics`: every key, always (null where nothing was measured)."""
    t = store.db.time(since)
    handed = (
        "EXISTS (SELECT 1 FROM conversation_events e WHERE e.conversation_id = c.id "
        "AND e.kind = 'handoff')"
    )
    spoke = (
        "EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.sender = 'visitor')"
    )
    [totals] = await store.query(
        "SELECT COUNT(*) AS conversations, "
        f"SUM(CASE WHEN {handed} THEN 1 ELSE 0 END) AS handed, "
        f"SUM(CASE WHEN {spoke} THEN 1 ELSE 0 END) AS spoke, "
        f"SUM(CASE WHEN {spoke} AND NOT {handed} THEN 1 ELSE 0 END) AS bot_only "
        "FROM conversations c WHERE c.created_at >= ?",
        (t,),
    )
    by_reason = await store.query(
        "SELECT reason, COUNT(*) AS n FROM conversation_events WHERE kind = 'handoff' "
        "AND at >= ? GROUP BY reason ORDER BY n DESC",
        (t,),
    )
    [breaches] = await store.query(
        "SELECT COUNT(*) AS n FROM conversation_events WHERE kind = 'sla_breach' AND at >= ?",
        (t,),
    )
    [csat] = await _csat_rows(store, since, "SELECT AVG({score}) AS avg, COUNT(*) AS n")
    [queue] = await store.query("SELECT COUNT(*) AS n FROM conversations WHERE status = 'queued'")
    agents = {"online": 0, "away": 0, "offline": 0}
    for row in await store.query(
        "SELECT CASE WHEN last_seen IS NULL OR last_seen < ? THEN 'offline' ELSE status END "
        "AS s, COUNT(*) AS n FROM agents GROUP BY 1",
        (store.db.time(online_since),),
    ):
        agents[row["s"]] = agents.get(row["s"], 0) + int(row["n"])
    conversations = int(totals["conversations"] or 0)
    handoffs = {str(r["reason"] or "unknown"): int(r["n"]) for r in by_reason}
    return {
        "conversations": conversations,
        "handoffs": sum(handoffs.values()),
        "handoff_rate": _ratio(int(totals["handed"] or 0), conversations),
        "handoffs_by_reason": handoffs,
        "bot_resolution_rate": _ratio(int(totals["bot_only"] or 0), int(totals["spoke"] or 0)),
        "first_response_s": await percentiles(store, ("first_response",), since),
        "wait_s": await percentiles(store, ("assigned", "claimed"), since),
        "sla_breaches": int(breaches["n"]),
        "csat": {
            "avg": round(float(csat["avg"]), 2) if csat["avg"] is not None else None,
            "count": int(csat["n"]),
        },
        "queue": {"waiting": int(queue["n"])},
        "agents": agents,
    }


async def distributions(store: ConversationStore, since: datetime) -> Dict[str, Any]:
    """Histograms for the supervisor's charts: first-response and waiting times in
    BUCKETS, ratings 1–5."""
    t = store.db.time(since)
    cases = " ".join(f"WHEN value <= {edge} THEN {edge}" for edge in BUCKETS)
    bucket = f"CASE {cases} ELSE 0 END"  # 0: over the last edge

    async def histogram(kinds: Sequence[str]) -> List[Dict[str, int]]:
        marks = ", ".join("?" for _ in kinds)
        rows = await store.query(
            f"SELECT {bucket} AS le, COUNT(*) AS n FROM conversation_events "
            f"WHERE kind IN ({marks}) AND at >= ? AND value IS NOT NULL GROUP BY 1",
            (*kinds, t),
        )
        counts = {int(r["le"]): int(r["n"]) for r in rows}
        return [{"le": edge, "n": counts.get(edge, 0)} for edge in BUCKETS] + [
            {"le": None, "n": counts.get(0, 0)}  # type: ignore[dict-item]
        ]

    rows = await _csat_by_score(store, since)
    ratings = [{"score": s, "n": rows.get(s, 0)} for s in range(1, 6)]
    return {
        "first_response_s": await histogram(("first_response",)),
        "wait_s": await histogram(("assigned", "claimed")),
        "csat": ratings,
    }


async def _csat_by_score(store: ConversationStore, since: datetime) -> Dict[int, int]:
    rows = await _csat_rows(
        store, since, "SELECT CAST({score} AS INTEGER) AS score, COUNT(*) AS n", " GROUP BY 1"
    )
    return {int(r["score"]): int(r["n"]) for r in rows}
