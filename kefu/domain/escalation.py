"""The one place that decides when a conversation leaves the bot, and why.

Used by the dialogue policy (`kefu.rasa.escalation_policy.EscalationPolicy`, which predicts
`action_handoff`) and by `action_handoff` itself (which names the reason), so
both always agree. The decision reads only plain facts about the conversation
since its last hand-over: the visitor's intents, the risks read from their words
(`kefu.domain.risk`, sentence by sentence), tone scores, and how often a form rejected an
answer. When several reasons apply, the one with the highest priority in
policy/escalation.yml wins (safety first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

from kefu.domain import risk, tone
from kefu.domain.policy.loader import Escalation, Reason

HANDOFF_ACTION = "action_handoff"
FALLBACK_INTENT = "nlu_fallback"
RETAIN_SLOT = "supervisor_retained"


@dataclass(frozen=True)
class Turn:
    intent: Optional[str]
    tone_score: float = 0.0
    labels: Sequence[str] = ()
    risks: Sequence[str] = ()  # reason codes read from the words (kefu.domain.risk)


@dataclass
class Facts:
    """What the conversation shows since its last hand-over (or its start)."""

    turns: List[Turn] = field(default_factory=list)
    form_failures: int = 0
    supervisor_retained: bool = False


@dataclass(frozen=True)
class Decision:
    reason: Reason
    retain: bool = False  # say the retain phrase instead of handing over
    note: str = ""  # for the agent and the log: what the desk saw

    @property
    def code(self) -> str:
        return self.reason.code


def decide(facts: Facts, policy: Escalation) -> Optional[Decision]:
    """Hand over now? Checked after every visitor message; None keeps the bot."""
    if not facts.turns:
        return None
    latest = facts.turns[-1]
    named = [policy.reason_for_intent(latest.intent)]
    named += [policy.reasons[code] for code in latest.risks if code in policy.reasons]
    candidates = [r for r in named if r is not None]
    if candidates:
        best = max(candidates, key=lambda r: r.priority)
        if best.retain_first and not facts.supervisor_retained:
            return Decision(best, retain=True)
        return Decision(best)
    # The visitor turns down the offer to keep the chat: they insist on a supervisor.
    if facts.supervisor_retained and latest.intent == "deny":
        return Decision(policy.reasons["supervisor"])
    # Anger outranks the bot's own failures: the visitor hears why they get a person.
    running, tense = tone.accumulate((t.tone_score for t in facts.turns), policy.tone)
    if running >= policy.tone.anger_threshold and tense >= policy.tone.min_tense_turns:
        return Decision(policy.reasons["anger"])
    n = policy.fallbacks_in_a_row
    recent = facts.turns[-n:]
    if len(recent) == n and all(t.intent == FALLBACK_INTENT for t in recent):
        return Decision(policy.reasons["bot_failure"])
    if facts.form_failures >= policy.form_failures:
        return Decision(policy.reasons["bot_failure"])
    return None


def tone_trend(facts: Facts, policy: Escalation) -> List[float]:
    """The running tone score after each turn, for the agent's summary."""
    out, running = [], 0.0
    for turn in facts.turns:
        running = running * policy.tone.decay + turn.tone_score
        out.append(round(running, 2))
    return out


FAILURE_SLOT = "form_failures"
REASON_SLOT = "handoff_reason"


def facts_from_events(events: Sequence[dict], form_failures: float | None = None) -> Facts:
    """Facts from tracker events as dicts (Rasa's `as_dict()` or the SDK's tracker).

    Counting restarts at a session start and whenever `handoff_reason` is set or
    cleared: a hand-over, and the agent's release back to the bot.
    """
    facts = Facts(form_failures=int(form_failures or 0))
    for event in events:
        kind = event.get("event")
        if kind == "session_started" or (kind == "slot" and event.get("name") == REASON_SLOT):
            facts.turns.clear()
            facts.supervisor_retained = False
        elif kind == "slot" and event.get("name") == RETAIN_SLOT:
            facts.supervisor_retained = bool(event.get("value"))
        elif kind == "user":
            facts.turns.append(turn_of(event.get("parse_data") or {}))
    return facts


def turn_of(parse: dict) -> Turn:
    """One visitor turn from a parse result (Rasa's, as stored in the tracker)."""
    tone_data = parse.get("tone") or {}
    return Turn(
        intent=(parse.get("intent") or {}).get("name"),
        tone_score=float(tone_data.get("score") or 0.0),
        labels=tuple(tone_data.get("labels") or ()),
        risks=risk.reading_of(parse),
    )


def assistant_failed(
    policy: Escalation,
    *,
    rasa_up: bool = True,
    replied: bool = True,
    action_server_up: bool = True,
) -> Optional[Decision]:
    """The desk's own facts after a bot turn: Rasa unreachable, no reply at all (never
    leave a visitor in silence), or the action server down (its forms and lookups cannot
    work). Any of them hands over with `bot_failure`; None keeps the bot."""
    if not rasa_up:
        note = "Rasa unavailable"
    elif not replied:
        note = "no reply from the assistant"
    elif not action_server_up:
        note = "action server down"
    else:
        return None
    return Decision(policy.reasons["bot_failure"], note=note)


def while_waiting(current: str, turns: Sequence[Turn], policy: Escalation) -> Optional[Decision]:
    """A visitor already waiting for a person writes again: a more urgent reason?

    The same decision as in the bot (intents, risks read from the words, anger over
    the turns written while waiting); only a reason of higher priority than the
    current one changes anything (a safety report jumps the queue).
    """
    decision = decide(Facts(turns=list(turns)), policy)
    if decision is None:
        return None
    reason = decision.reason
    now = policy.reasons.get(current)
    if now is not None and reason.priority <= now.priority:
        return None
    return Decision(reason)
