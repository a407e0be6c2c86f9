"""Handing a conversation to a human agent: the reason, the phrase, the summary.

The decision itself is `kefu.domain.escalation.decide`, shared with the dialogue policy.
The desk reads the `{"kefu": {"event": "handoff", ...}}` message this sends and
queues the conversation (or books a call-back outside working hours).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import config
from kefu.domain.escalation import (
    FAILURE_SLOT,
    REASON_SLOT,
    RETAIN_SLOT,
    Decision,
    decide,
    facts_from_events,
    tone_trend,
)

# Slots an agent needs to see in the summary.
SUMMARY_SLOTS = (
    "name",
    "phone",
    "order_id",
    "product",
    "return_type",
    "return_reason",
    "complaint_what",
    "complaint_when",
    "complaint_want",
)


def session_events(tracker: Tracker) -> List[Dict[str, Any]]:
    events: List[Dict[str, Any]] = []
    for event in reversed(tracker.events):
        if event.get("event") == "session_started":
            break
        events.append(event)
    events.reverse()
    return events


def summary(tracker: Tracker, decision: Decision) -> Dict[str, Any]:
    escalation = config.policy().escalation
    events = session_events(tracker)
    facts = facts_from_events(events)
    intents = [
        ((e.get("parse_data") or {}).get("intent") or {}).get("name")
        for e in events
        if e.get("event") == "user"
    ]
    return {
        "reason": decision.code,
        "priority": decision.reason.priority,
        "intents": [i for i in intents if i],
        "slots": {s: tracker.get_slot(s) for s in SUMMARY_SLOTS if tracker.get_slot(s)},
        "tone_trend": tone_trend(facts, escalation),
        "tone_labels": sorted({label for t in facts.turns for label in t.labels}),
        "evidence": evidence(events),
        "last_message": (tracker.latest_message or {}).get("text") or "",
        **tensest(events),
    }


def tensest(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The visitor's sentence with the highest tone score, for the agent's summary."""
    best: Dict[str, Any] = {}
    for event in events:
        if event.get("event") != "user":
            continue
        score = float(((event.get("parse_data") or {}).get("tone") or {}).get("score") or 0)
        if score > float(best.get("tone_peak") or 0):
            best = {"tone_peak": score, "tone_sentence": str(event.get("text") or "")[:120]}
    return best


def evidence(events: List[Dict[str, Any]], limit: int = 6) -> List[Dict[str, Any]]:
    """What showed the risk: the words and the sentence, newest last (kefu.domain.risk)."""
    found: List[Dict[str, Any]] = []
    for event in events:
        if event.get("event") != "user":
            continue
        parse = event.get("parse_data") or {}
        for item in (parse.get("risk") or {}).get("evidence") or []:
            found.append({k: item.get(k) for k in ("reason", "sentence", "match", "how")})
    return found[-limit:]


def answer_taken_by_form(tracker: Tracker) -> List[EventType]:
    """The slot the open form was asking for, if the latest message filled it.

    Rasa fills a form's free-text slot from the message before any policy runs;
    a message that hands the conversation over is not an answer to the question.
    """
    requested = tracker.get_slot("requested_slot")
    if not (tracker.active_loop.get("name") and requested):
        return []
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return []
        if event.get("event") == "slot" and event.get("name") == requested:
            return [SlotSet(requested, None)]
    return []


def hand_over(
    dispatcher: CollectingDispatcher, tracker: Tracker, decision: Decision
) -> List[EventType]:
    """Tell the visitor, tell the desk, end any open form."""
    dispatcher.utter_message(response=f"phrase_{decision.reason.phrase}")
    dispatcher.utter_message(
        json_message={"kefu": {"event": "handoff", **summary(tracker, decision)}}
    )
    events: List[EventType] = [SlotSet(REASON_SLOT, decision.code), SlotSet(RETAIN_SLOT, False)]
    events += answer_taken_by_form(tracker)
    if tracker.active_loop.get("name"):
        events += [ActiveLoop(None), SlotSet("requested_slot", None)]
    return events + [SlotSet(FAILURE_SLOT, 0.0)]


def decision_for(tracker: Tracker, reason_code: Optional[str] = None) -> Decision:
    escalation = config.policy().escalation
    if reason_code:
        return Decision(escalation.reasons[reason_code])
    facts = facts_from_events(session_events(tracker), tracker.get_slot(FAILURE_SLOT))
    # Predicted by a rule the policy file no longer backs: the visitor asked for a person.
    return decide(facts, escalation) or Decision(escalation.reasons["customer_request"])


class ActionHandoff(Action):
    def name(self) -> Text:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        decision = decision_for(tracker)
        if decision.retain:
            dispatcher.utter_message(response="phrase_supervisor_retain")
            return [SlotSet(RETAIN_SLOT, True)] + answer_taken_by_form(tracker)
        return hand_over(dispatcher, tracker, decision)
