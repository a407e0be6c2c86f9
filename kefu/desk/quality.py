"""Quality review (质检): each closed conversation a person handled gets a score out of
100 and the findings behind it, each with the moment it happened (`at`), so a supervisor
can open the transcript there.

What costs points: a reply the phrasing checker blocked (and what was sent instead), a
visitor left over `SLOW_REPLY_S` seconds between a message and the reply, a first reply
later than the policy's `sla.first_response_s` (or none at all), a visitor whose tone
rose while a person had the chat, and a low rating."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Optional, Sequence

from kefu.store.conversations import Conversation, Message

SLOW_REPLY_S = 90
PENALTY = {
    "blocked_reply": 10,
    "slow_reply": 5,
    "first_response": 15,
    "no_reply": 30,
    "tone_rising": 10,
    "low_rating": 20,
    "fair_rating": 5,
}
TONE_RISE = 0.5  # the visitor's running tone score went up at least this much


def _iso(value: Optional[datetime]) -> Optional[str]:
    return value.isoformat() if value else None


def score(
    conversation: Conversation,
    messages: Sequence[Message],
    events: Sequence[Dict[str, Any]],
    ratings: Sequence[int],
    first_response_s: float,
    tone_decay: float = 0.6,
) -> Dict[str, Any]:
    """`{"conversation_id", "agent", "score", "findings": [{"kind", "detail", "at"}]}`."""
    findings: List[Dict[str, Any]] = []
    picked = [e for e in events if e["kind"] in ("assigned", "claimed", "transferred")]
    taken_at = picked[0]["at"] if picked else None
    agents = [e["agent"] for e in picked if e.get("agent")]

    for e in events:
        if e["kind"] != "blocked":
            continue
        data = e.get("data") or {}
        sent = next((m for m in messages if m.sender == "agent" and m.created_at >= e["at"]), None)
        instead = f"；随后发送：“{sent.text}”" if sent else "；之后没有再发送"
        rules = "；".join(data.get("reasons") or data.get("rules") or [])
        findings.append(
            {
                "kind": "blocked_reply",
                "detail": f"被拦截：“{data.get('text', '')}”（{rules}）{instead}",
                "at": _iso(e["at"]),
            }
        )

    if taken_at is not None:
        pending: Optional[Message] = None
        for m in messages:
            if m.created_at < taken_at:
                continue
            if m.sender == "visitor" and pending is None:
                pending = m
            elif m.sender == "agent" and pending is not None:
                gap = (m.created_at - pending.created_at).total_seconds()
                if gap > SLOW_REPLY_S:
                    findings.append(
                        {
                            "kind": "slow_reply",
                            "detail": f"访客“{pending.text[:30]}”之后{round(gap)}秒才回复",
                            "at": _iso(pending.created_at),
                        }
                    )
                pending = None

    responded = [e for e in events if e["kind"] == "first_response"]
    if responded:
        seconds = float(responded[0]["value"] or 0)
        if seconds > first_response_s:
            findings.append(
                {
                    "kind": "first_response",
                    "detail": f"首次回复用时{round(seconds)}秒，"
                    f"超过{round(first_response_s)}秒的标准",
                    "at": _iso(responded[0]["at"]),
                }
            )
    elif taken_at is not None:
        findings.append(
            {"kind": "no_reply", "detail": "人工接入后没有回复访客", "at": _iso(taken_at)}
        )

    waiting = conversation.summary.get("waiting_turns") or []
    turns = [float(t.get("tone_score") or 0) for t in waiting]
    running, trend = 0.0, []
    for value in turns:
        running = running * tone_decay + value
        trend.append(running)
    if len(trend) >= 2 and trend[-1] - min(trend) >= TONE_RISE:
        findings.append(
            {
                "kind": "tone_rising",
                "detail": f"人工接待期间访客情绪走高（{min(trend):.1f} → {trend[-1]:.1f}）",
                "at": _iso(conversation.updated_at),
            }
        )

    if ratings:
        last = ratings[-1]
        if last <= 3:
            kind = "low_rating" if last <= 2 else "fair_rating"
            detail = f"访客评分{last}分（满分5分）"
            findings.append({"kind": kind, "detail": detail, "at": _iso(conversation.updated_at)})

    points = 100 - sum(PENALTY[f["kind"]] for f in findings)
    return {
        "conversation_id": conversation.id,
        "agent": agents[-1] if agents else conversation.agent,
        "score": max(0, points),
        "findings": findings,
    }
