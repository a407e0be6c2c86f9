"""The review inbox: what the bot did not understand in real chats.

Sources, read with plain SQL (no Rasa import):

- Rasa's tracker store (endpoints.yml: a SQLite file by default, PostgreSQL in
  endpoints.scaled.yml), table `events`: every `user` event carries the parse Rasa
  acted on. A message **fell back** when the NLU gave `nlu_fallback`, when the dialogue
  ran `action_default_fallback` right after it, or when it was classified
  `out_of_scope` (the bot answered that it cannot help); it had **low confidence**
  when its intent's confidence was under `LOW_CONFIDENCE` without falling back.
- The desk's store (`KEFU_DATABASE_URL`, the same URL the desk uses): conversations
  handed over with reason `bot_failure` (the visitor message before the hand-over),
  and the agents' corrections (reason `corrected`, with the intent they meant).

Occurrences are grouped by their folded text (`kefu.tools.nludata.fold`: simplified,
punctuation and ids folded), most frequent first.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import yaml

from kefu.paths import ROOT
from kefu.store.reviews import ReviewStore, StoredMessage
from kefu.store.sql import Database, open_database, store_url
from kefu.tools.nludata import fold

REASONS = ("fallback", "low_confidence", "bot_failure", "corrected")
FALLBACK_INTENT = "nlu_fallback"
OUT_OF_SCOPE = "out_of_scope"
FAQ_INTENT = "faq"  # the retrieval intent of shop questions (faq/<topic>)
CORE_FALLBACK = "action_default_fallback"
# Under this, a message the NLU did not reject still counts as a doubtful guess. The
# FallbackClassifier rejects under 0.25 (config.yml). Measured on the model of this
# commit: 3 of 84 right guesses on held-out examples fall under 0.5, and 3 of 54 right
# FAQ topics on dev shop questions (the lower of intent and topic confidence), while the
# four misrouted gift-wrap questions of the README's example are all under it.
LOW_CONFIDENCE = 0.5
EXTERNAL_PREFIX = "EXTERNAL: "  # Rasa's trigger_intent (the desk's opening greeting)
MATCH_WINDOW_S = 120.0  # a desk message and Rasa's event for it are this close at most


class ReviewError(RuntimeError):
    """A source that cannot be read, or a bad option; the message is one line."""


@dataclass
class Turn:
    """One `user` event of Rasa's tracker."""

    event_id: int
    conversation_id: str
    text: str
    at: datetime
    intent: Optional[str]
    predicted: Optional[str]
    confidence: Optional[float]
    core_fallback: bool = False

    def reasons(self, low_confidence: float) -> Set[str]:
        if self.intent in (FALLBACK_INTENT, OUT_OF_SCOPE) or self.core_fallback:
            return {"fallback"}
        if self.confidence is not None and self.confidence < low_confidence:
            return {"low_confidence"}
        return set()


@dataclass
class Occurrence:
    conversation_id: str
    text: str
    at: datetime
    predicted: Optional[str]
    confidence: Optional[float]
    reasons: Set[str]
    intended: Optional[str] = None
    seq: Optional[int] = None  # the desk's message number, when the desk stored it
    event_id: Optional[int] = None


@dataclass
class Item:
    """Occurrences of one folded text."""

    key: str
    occurrences: List[Occurrence] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The way it was typed most often (the latest of equals)."""
        latest = sorted(self.occurrences, key=lambda o: o.at)
        counts = Counter(o.text for o in latest)
        best = max(counts.values())
        return [o.text for o in latest if counts[o.text] == best][-1]

    @property
    def count(self) -> int:
        return len(self.occurrences)

    @property
    def predicted(self) -> Optional[str]:
        named = [o.predicted for o in self.occurrences if o.predicted]
        return Counter(named).most_common(1)[0][0] if named else None

    @property
    def confidence(self) -> Optional[float]:
        values = [
            o.confidence
            for o in self.occurrences
            if o.predicted == self.predicted and o.confidence is not None
        ]
        return round(sum(values) / len(values), 3) if values else None

    @property
    def last_seen(self) -> datetime:
        return max(o.at for o in self.occurrences)

    @property
    def conversation_ids(self) -> List[str]:
        ordered = sorted(self.occurrences, key=lambda o: o.at, reverse=True)
        return list(dict.fromkeys(o.conversation_id for o in ordered))

    @property
    def reasons(self) -> List[str]:
        found = set().union(*(o.reasons for o in self.occurrences))
        return [r for r in REASONS if r in found]

    @property
    def intended(self) -> List[str]:
        return sorted({o.intended for o in self.occurrences if o.intended})

    def as_json(self) -> Dict[str, Any]:
        """The contract of `kefu review list --json`: exactly these keys."""
        return {
            "text": self.text,
            "count": self.count,
            "predicted": self.predicted,
            "confidence": self.confidence,
            "last_seen": self.last_seen.isoformat(),
            "conversation_ids": self.conversation_ids,
        }

    def as_details(self) -> Dict[str, Any]:
        """What the /review page shows besides: reasons, corrections, occurrences."""
        return {
            **self.as_json(),
            "key": self.key,
            "reasons": self.reasons,
            "intended": self.intended,
            "occurrences": [
                {
                    "conversation_id": o.conversation_id,
                    "seq": o.seq,
                    "text": o.text,
                    "at": o.at.isoformat(),
                    "reasons": [r for r in REASONS if r in o.reasons],
                    "predicted": o.predicted,
                    "confidence": o.confidence,
                    "intended": o.intended,
                }
                for o in sorted(self.occurrences, key=lambda o: o.at, reverse=True)
            ],
        }


# --- options -------------------------------------------------------------------------


def parse_since(raw: Optional[str], now: Optional[datetime] = None) -> Optional[datetime]:
    """2026-12-01, 2026-12-01T08:00, 2026-12-01T08:00+08:00, or 7d / 24h back from now."""
    if raw is None or raw == "":
        return None
    now = now or datetime.now(timezone.utc)
    relative = re.fullmatch(r"(\d+)([dh])", raw.strip())
    if relative:
        amount = int(relative.group(1))
        unit = timedelta(days=1) if relative.group(2) == "d" else timedelta(hours=1)
        return now - amount * unit
    try:
        when = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ReviewError(
            f"--since {raw!r}: expected a date (2026-12-01), a time (2026-12-01T08:00) or 7d/24h"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


# --- Rasa's tracker store ------------------------------------------------------------

_VAR = re.compile(r"\$\{([^}]+)\}")


def tracker_url(endpoints: Path, env: Optional[Dict[str, str]] = None) -> Optional[str]:
    """The tracker store an endpoints file names, as a URL (sqlite:///… or
    postgresql://…); None when it keeps trackers in memory."""
    from kefu.stack.runner import SCALED_DEFAULTS

    env = {**SCALED_DEFAULTS, **(env if env is not None else os.environ)}
    try:
        config = yaml.safe_load(endpoints.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ReviewError(f"cannot read {endpoints}: {e}") from None
    store = config.get("tracker_store") or {}
    if not isinstance(store, dict) or str(store.get("type", "")).upper() != "SQL":
        return None

    def value(key: str, default: str = "") -> str:
        raw = str(store.get(key) if store.get(key) is not None else default)
        return _VAR.sub(lambda m: env.get(m.group(1), ""), raw)

    dialect = value("dialect", "sqlite")
    if dialect == "sqlite":
        db = Path(value("db", "rasa.db"))
        return f"sqlite:///{db if db.is_absolute() else ROOT / db}"
    if dialect.startswith("postgres"):
        user, password = value("username", "postgres"), value("password")
        auth = user + (f":{password}" if password else "")
        port = value("port", "5432")
        return f"postgresql://{auth}@{value('url', 'localhost')}:{port}/{value('db', 'rasa')}"
    raise ReviewError(f"tracker store dialect {dialect!r} is not supported by kefu review")


class TrackerReader:
    """Rasa's `events` table, read-only."""

    def __init__(self, url: Optional[str]) -> None:
        self.url = url

    def _sqlite_path(self) -> Optional[Path]:
        assert self.url is not None
        return Path(self.url[len("sqlite:///") :]) if self.url.startswith("sqlite:///") else None

    async def _fetch(self, sql: str, args: Sequence[Any]) -> List[Dict[str, Any]]:
        if self.url is None:
            return []
        path = self._sqlite_path()
        if path is not None:
            if not path.exists():
                return []  # no chat yet
            return await asyncio.to_thread(_sqlite_fetch, path, sql, list(args))
        db = open_database(self.url)
        try:
            try:
                return await db.fetch(sql, args)
            except Exception as e:  # a missing table (no chat yet) or the driver's error
                if "events" in str(e) and ("exist" in str(e) or "relation" in str(e)):
                    return []
                raise
        finally:
            await db.close()

    async def turns(self, since: Optional[datetime] = None) -> List[Turn]:
        """Every visitor turn since `since`, in order, with what the NLU predicted."""
        start = since.timestamp() if since else 0.0
        rows = await self._fetch(
            "SELECT id, sender_id, type_name, action_name, timestamp, data FROM events "
            "WHERE timestamp >= ? AND (type_name = 'user' OR (type_name = 'action' AND "
            "action_name = ?)) ORDER BY sender_id, id",
            (start, CORE_FALLBACK),
        )
        turns: List[Turn] = []
        last: Dict[str, Turn] = {}
        for row in rows:
            if row["type_name"] == "action":
                previous = last.get(row["sender_id"])
                if previous is not None:
                    previous.core_fallback = True
                continue
            turn = turn_of(row)
            if turn is not None:
                turns.append(turn)
                last[turn.conversation_id] = turn
        return turns

    async def events(self, conversation_id: str) -> List[Dict[str, Any]]:
        """The tracker's events of one conversation, as Rasa stored them."""
        rows = await self._fetch(
            "SELECT data FROM events WHERE sender_id = ? ORDER BY id", (conversation_id,)
        )
        return [json.loads(row["data"]) for row in rows if row.get("data")]


def _sqlite_fetch(path: Path, sql: str, args: List[Any]) -> List[Dict[str, Any]]:
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as e:
        raise ReviewError(f"cannot open the tracker store {path}: {e}") from None
    try:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute(sql, args).fetchall()]
    except sqlite3.DatabaseError as e:
        if "no such table" in str(e):
            return []
        raise ReviewError(f"cannot read the tracker store {path}: {e}") from None
    finally:
        connection.close()


def turn_of(row: Dict[str, Any]) -> Optional[Turn]:
    try:
        data = json.loads(row["data"] or "{}")
    except ValueError:
        return None
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        return None
    metadata = data.get("metadata") or {}
    if text.startswith((EXTERNAL_PREFIX, "/")) or metadata.get("is_external"):
        return None  # an intent triggered by the desk, not typed by a visitor
    parse = data.get("parse_data") or {}
    intent = (parse.get("intent") or {}).get("name")
    predicted, confidence = prediction(parse)
    at = datetime.fromtimestamp(float(data.get("timestamp") or row["timestamp"]), timezone.utc)
    return Turn(int(row["id"]), row["sender_id"], text, at, intent, predicted, confidence)


def prediction(parse: Dict[str, Any]) -> Tuple[Optional[str], Optional[float]]:
    """The intent the NLU guessed and its confidence; behind a fallback, the best real
    guess under it (Rasa's FallbackClassifier keeps the ranking). A shop question is its
    topic, faq/<topic>, with the lower of the intent's and the topic's confidence: the
    topic is the answer the visitor got."""
    intent = parse.get("intent") or {}
    name, confidence = None, None
    if intent.get("name") and intent.get("name") != FALLBACK_INTENT:
        name, confidence = intent["name"], _float(intent.get("confidence"))
    else:
        for ranked in parse.get("intent_ranking") or []:
            if ranked.get("name") and ranked["name"] != FALLBACK_INTENT:
                name, confidence = ranked["name"], _float(ranked.get("confidence"))
                break
    if name == FAQ_INTENT:
        topic = ((parse.get("response_selector") or {}).get(FAQ_INTENT) or {}).get("response") or {}
        key = topic.get("intent_response_key")
        if isinstance(key, str) and key.startswith(FAQ_INTENT + "/"):
            name = key
            scores = [c for c in (confidence, _float(topic.get("confidence"))) if c is not None]
            confidence = min(scores) if scores else None
    return name, confidence


def _float(value: Any) -> Optional[float]:
    try:
        return round(float(value), 4)
    except (TypeError, ValueError):
        return None


# --- the inbox -----------------------------------------------------------------------


@dataclass
class Sources:
    database_url: str
    tracker_url: Optional[str]

    @classmethod
    def default(
        cls,
        database: Optional[str] = None,
        tracker: Optional[str] = None,
        endpoints: Optional[Path] = None,
    ) -> "Sources":
        """The desk's store as the desk chooses it (KEFU_DATABASE_URL or var/kefu.db) and
        the tracker store of endpoints.yml (or the URL given)."""
        if tracker is None:
            tracker = tracker_url(endpoints or ROOT / "endpoints.yml")
        return cls(database or store_url(), tracker)


async def collect(
    sources: Sources,
    since: Optional[datetime] = None,
    reasons: Optional[Iterable[str]] = None,
    low_confidence: float = LOW_CONFIDENCE,
    db: Optional[Database] = None,
) -> List[Item]:
    """The inbox: grouped occurrences, most frequent first (then the most recent).

    `db`: the desk's open database (the desk passes its own); otherwise the one the
    sources name is opened and closed here. The reading is async; the matching and
    grouping run in a thread, off the event loop.
    """
    wanted = set(reasons or REASONS)
    turns = await TrackerReader(sources.tracker_url).turns(since)
    flagged = {t.conversation_id for t in turns if t.reasons(low_confidence)}
    desk = DeskRows([], [], [])
    if db is not None or _store_exists(sources.database_url):
        store = ReviewStore(db or open_database(sources.database_url))
        try:
            desk = await desk_rows(store, since, flagged)
        finally:
            if db is None:
                await store.close()
    return await asyncio.to_thread(assemble, turns, desk, wanted, low_confidence)


@dataclass
class DeskRows:
    failures: List[Dict[str, Any]]  # conversation_id, at
    corrections: List[Any]  # kefu.store.reviews.Correction
    visitor: List[StoredMessage]  # the visitor messages of every conversation involved


async def desk_rows(store: ReviewStore, since: Optional[datetime], flagged: Set[str]) -> DeskRows:
    failures = await store.handed_over_for("bot_failure", since)
    corrections = await store.corrections(since)
    involved = flagged | {f["conversation_id"] for f in failures}
    involved |= {c.conversation_id for c in corrections}
    visitor = await store.messages(sorted(involved), sender="visitor")
    return DeskRows(failures, corrections, visitor)


def assemble(
    turns: Sequence[Turn], desk: DeskRows, wanted: Set[str], low_confidence: float
) -> List[Item]:
    occurrences: Dict[Tuple[str, Any], Occurrence] = {}
    by_conversation: Dict[str, List[Turn]] = {}
    for turn in turns:
        by_conversation.setdefault(turn.conversation_id, []).append(turn)
        why = turn.reasons(low_confidence)
        if why:
            occurrences[(turn.conversation_id, turn.event_id)] = Occurrence(
                turn.conversation_id,
                turn.text,
                turn.at,
                turn.predicted,
                turn.confidence,
                set(why),
                event_id=turn.event_id,
            )
    visitor: Dict[str, List[StoredMessage]] = {}
    for message in desk.visitor:
        visitor.setdefault(message.conversation_id, []).append(message)
    for failure in desk.failures:
        cid, at = failure["conversation_id"], failure["at"]
        before = [m for m in visitor.get(cid, []) if m.created_at <= at]
        if before:  # the message the bot failed on: the last one before the hand-over
            _add(occurrences, before[-1], by_conversation.get(cid, []), "bot_failure")
    for correction in desk.corrections:
        stored = [m for m in visitor.get(correction.conversation_id, []) if m.seq == correction.seq]
        message = (
            stored[0]
            if stored
            else StoredMessage(
                correction.conversation_id,
                correction.seq,
                "visitor",
                correction.text,
                correction.created_at,
            )
        )
        turns_here = by_conversation.get(correction.conversation_id, [])
        _add(occurrences, message, turns_here, "corrected", correction.intent)
    _number(occurrences, visitor)

    items: Dict[str, Item] = {}
    for occurrence in occurrences.values():
        occurrence.reasons &= wanted
        if occurrence.reasons:
            key = fold(occurrence.text)
            items.setdefault(key, Item(key)).occurrences.append(occurrence)
    return sorted(items.values(), key=lambda i: (-i.count, -i.last_seen.timestamp()))


def _store_exists(url: str) -> bool:
    """A SQLite store that was never created is empty (and is not created by reading)."""
    return not url.startswith("sqlite:///") or Path(url[len("sqlite:///") :]).exists()


def _match(turns: Sequence[Turn], text: str, at: datetime) -> Optional[Turn]:
    """Rasa's turn for a message the desk stored: the same folded text, soon after."""
    key = fold(text)
    near = [
        t
        for t in turns
        if -5.0 <= (t.at - at).total_seconds() <= MATCH_WINDOW_S and fold(t.text) == key
    ]
    return min(near, key=lambda t: abs((t.at - at).total_seconds())) if near else None


def _add(
    occurrences: Dict[Tuple[str, Any], Occurrence],
    message: StoredMessage,
    turns: Sequence[Turn],
    reason: str,
    intended: Optional[str] = None,
) -> None:
    turn = _match(turns, message.text, message.created_at)
    key: Tuple[str, Any] = (
        (message.conversation_id, turn.event_id)
        if turn
        else (message.conversation_id, ("seq", message.seq))
    )
    occurrence = occurrences.get(key)
    if occurrence is None:
        occurrence = Occurrence(
            message.conversation_id,
            message.text,
            turn.at if turn else message.created_at,
            turn.predicted if turn else None,
            turn.confidence if turn else None,
            set(),
            event_id=turn.event_id if turn else None,
        )
        occurrences[key] = occurrence
    occurrence.reasons.add(reason)
    occurrence.seq = message.seq
    if intended:
        occurrence.intended = intended


def _number(
    occurrences: Dict[Tuple[str, Any], Occurrence], visitor: Dict[str, List[StoredMessage]]
) -> None:
    """The desk's message number of each tracker occurrence (for the page and the flag)."""
    for occurrence in occurrences.values():
        if occurrence.seq is not None:
            continue
        key = fold(occurrence.text)
        candidates = [
            m
            for m in visitor.get(occurrence.conversation_id, [])
            if -5.0 <= (occurrence.at - m.created_at).total_seconds() <= MATCH_WINDOW_S
            and fold(m.text) == key
        ]
        if candidates:
            occurrence.seq = candidates[-1].seq


async def context(
    sources: Sources,
    conversation_id: str,
    seq: Optional[int],
    around: int = 4,
    db: Optional[Database] = None,
) -> List[Dict[str, Any]]:
    """The messages around one occurrence: from the desk's store when it has the
    conversation, else from the tracker's user and bot events."""
    messages: List[StoredMessage] = []
    if db is not None or _store_exists(sources.database_url):
        store = ReviewStore(db or open_database(sources.database_url))
        try:
            messages = await store.messages([conversation_id])
        finally:
            if db is None:
                await store.close()
    if messages:
        index = next((i for i, m in enumerate(messages) if m.seq == seq), len(messages) - 1)
        window = messages[max(0, index - around) : index + around + 1]
        return [
            {"seq": m.seq, "sender": m.sender, "text": m.text, "this": m.seq == seq} for m in window
        ]
    events = await TrackerReader(sources.tracker_url).events(conversation_id)
    said = [
        {"seq": None, "sender": "visitor" if e["event"] == "user" else "bot", "text": e["text"]}
        for e in events
        if e.get("event") in ("user", "bot")
        and isinstance(e.get("text"), str)
        and not e["text"].startswith(EXTERNAL_PREFIX)
    ]
    return [{**m, "this": False} for m in said[-2 * around :]]


# --- output --------------------------------------------------------------------------


def width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def clip(text: str, limit: int) -> str:
    out, used = "", 0
    for ch in text.replace("\n", " "):
        w = width(ch)
        if used + w > limit - 1:
            return out + "…"
        out, used = out + ch, used + w
    return out


def pad(text: str, size: int) -> str:
    return text + " " * max(0, size - width(text))


def table(items: Sequence[Item]) -> str:
    """A readable table: count, reasons, the guess, last seen, conversations, text."""
    if not items:
        return "nothing to review: no message fell back, was doubtful, failed or was corrected"
    head = ["count", "reason", "predicted", "conf", "last seen (UTC)", "chats", "text"]
    rows = []
    for item in items:
        reasons = ",".join(item.reasons)
        if item.intended:
            reasons += " → " + ",".join(item.intended)
        rows.append(
            [
                str(item.count),
                reasons,
                item.predicted or "-",
                f"{item.confidence:.2f}" if item.confidence is not None else "-",
                item.last_seen.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M"),
                str(len(item.conversation_ids)),
                clip(item.text, 48),
            ]
        )
    sizes = [max(width(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        "  ".join(pad(cell, sizes[i]) for i, cell in enumerate(r)).rstrip() for r in [head, *rows]
    ]
    lines.insert(1, "  ".join("-" * s for s in sizes))
    return "\n".join(lines)
