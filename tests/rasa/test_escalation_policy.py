"""The escalation decision, tone scoring, and the dialogue policy that applies them."""

from __future__ import annotations

import dataclasses

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from kefu.domain import tone
from kefu.domain.escalation import Facts, Turn, decide, facts_from_events, tone_trend
from kefu.rasa.escalation_policy import EscalationPolicy


def turns(*items) -> Facts:
    return Facts(turns=[Turn(i, s) if isinstance(i, str) else Turn(*i) for i, s in items])


@pytest.mark.parametrize(
    "intent, code",
    [
        ("ask_human", "customer_request"),
        ("demand_compensation", "compensation"),
        ("threaten", "legal_media"),
        ("insult", "abuse"),
        ("report_safety", "safety"),
    ],
)
def test_each_escalation_intent_has_its_reason(policy, intent, code):
    decision = decide(turns(("greet", 0), (intent, 0)), policy.escalation)
    assert decision is not None and decision.code == code and not decision.retain


def test_safety_outranks_every_other_reason(policy):
    priorities = {c: r.priority for c, r in policy.escalation.reasons.items()}
    assert max(priorities, key=priorities.get) == "safety"


def test_supervisor_is_handed_over_at_once_by_default(policy):
    decision = decide(turns(("ask_supervisor", 0)), policy.escalation)
    assert decision is not None and not decision.retain and decision.code == "supervisor"


def test_supervisor_kept_once_when_the_operator_turns_retain_first_on(policy):
    reasons = dict(policy.escalation.reasons)
    reasons["supervisor"] = dataclasses.replace(reasons["supervisor"], retain_first=True)
    escalation = dataclasses.replace(policy.escalation, reasons=reasons)
    first = decide(turns(("ask_supervisor", 0)), escalation)
    assert first is not None and first.retain and first.code == "supervisor"
    insisted = Facts(
        turns=[Turn("ask_supervisor"), Turn("ask_supervisor")], supervisor_retained=True
    )
    decision = decide(insisted, escalation)
    assert decision is not None and not decision.retain and decision.code == "supervisor"
    refused = Facts(turns=[Turn("ask_supervisor"), Turn("deny")], supervisor_retained=True)
    assert decide(refused, escalation).code == "supervisor"


def test_two_fallbacks_in_a_row_and_repeated_form_failures_are_bot_failures(policy):
    assert (
        decide(turns(("nlu_fallback", 0), ("nlu_fallback", 0)), policy.escalation).code
        == "bot_failure"
    )
    assert (
        decide(turns(("nlu_fallback", 0), ("greet", 0), ("nlu_fallback", 0)), policy.escalation)
        is None
    )
    failing = Facts(turns=[Turn("inform")], form_failures=2)
    assert decide(failing, policy.escalation).code == "bot_failure"


def score(text: str, policy) -> tone.ToneScore:
    return tone.score(text, policy.escalation.tone)


def test_tone_scores_words_punctuation_and_repetition(policy):
    calm = score("请问我的快递到哪了", policy)
    assert calm.score == 0 and calm.labels == ()
    angry = score("我都问了第三次了！！！到底什么时候发货？？？", policy)
    assert {"repeat_ask", "exclamations", "questions", "anger_words"} <= set(angry.labels)
    assert 0 < angry.score <= 1
    assert "insult" in score("你们这垃圾客服", policy).labels
    assert "shouting" in score("WHERE IS MY ORDER", policy).labels


def test_anger_is_measured_over_turns_never_one_message(policy):
    furious = score("气死了！！！你们到底搞什么？？？忍无可忍", policy).score
    one = turns(("complain", furious))
    assert decide(one, policy.escalation) is None  # one message, however angry
    two = turns(("urge", score("我都问了第三次了！！！", policy).score), ("complain", furious))
    decision = decide(two, policy.escalation)
    assert decision is not None and decision.code == "anger"
    trend = tone_trend(two, policy.escalation)
    assert trend[-1] > trend[0] > 0


def test_calm_turns_between_let_the_score_decay(policy):
    mild = score("怎么还没到！！", policy).score
    spread = turns(("urge", mild), ("greet", 0), ("thank", 0), ("greet", 0), ("urge", mild))
    assert decide(spread, policy.escalation) is None


def test_facts_restart_at_a_hand_over_and_at_release(policy):
    def user(intent: str, score: float = 0.0) -> dict:
        return {
            "event": "user",
            "parse_data": {"intent": {"name": intent}, "tone": {"score": score}},
        }

    events = [
        user("urge", 0.8),
        {"event": "slot", "name": "handoff_reason", "value": "anger"},
        user("greet"),
        {"event": "slot", "name": "handoff_reason", "value": None},
        user("urge", 0.8),
    ]
    facts = facts_from_events(events)
    assert [t.intent for t in facts.turns] == ["urge"]
    assert decide(facts, policy.escalation) is None


# --- the dialogue policy on real Rasa trackers -----------------------------------------


@pytest.fixture
def escalation_policy(policy, tmp_path):
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(GraphSchema({}), "test")
    return EscalationPolicy(
        EscalationPolicy.get_default_config(),
        storage,
        Resource("escalation"),
        context,
        escalation=policy.escalation,
    )


def said(text: str, intent: str, tone_score: float = 0.0) -> UserUttered:
    return UserUttered(
        text,
        {"name": intent, "confidence": 1.0},
        parse_data={
            "intent": {"name": intent, "confidence": 1.0},
            "text": text,
            "tone": {"score": tone_score, "labels": []},
        },
    )


def predicted(escalation_policy, domain, events):
    tracker = DialogueStateTracker.from_events("visitor", events, domain.slots)
    prediction = escalation_policy.predict_action_probabilities(tracker, domain)
    best = max(range(len(prediction.probabilities)), key=prediction.probabilities.__getitem__)
    if prediction.probabilities[best] == 0:
        return None, prediction
    return domain.action_names_or_texts[best], prediction


def test_policy_hands_over_on_anger_across_turns(escalation_policy, domain, policy):
    start = [
        ActionExecuted("action_session_start"),
        SessionStarted(),
        ActionExecuted("action_listen"),
    ]
    first = score("我都问了第三次了！！！", policy).score
    second = score("你们到底怎么回事？？？真是忍无可忍", policy).score
    events = start + [
        said("我都问了第三次了！！！", "urge", first),
        ActionExecuted("action_urge"),
        ActionExecuted("action_listen"),
    ]
    assert predicted(escalation_policy, domain, events)[0] is None
    events += [said("你们到底怎么回事？？？真是忍无可忍", "complain", second)]
    assert predicted(escalation_policy, domain, events)[0] == "action_handoff"
    events += [ActionExecuted("action_handoff"), SlotSet("handoff_reason", "anger")]
    assert predicted(escalation_policy, domain, events)[0] == "action_listen"


def test_policy_hands_over_in_the_middle_of_any_form(escalation_policy, domain):
    events = [
        ActionExecuted("action_listen"),
        said("我要投诉", "complain"),
        ActionExecuted("complaint_form"),
        ActiveLoop("complaint_form"),
        SlotSet("requested_slot", "complaint_when"),
        ActionExecuted("action_listen"),
        said("充电器冒烟了", "report_safety"),
    ]
    assert predicted(escalation_policy, domain, events)[0] == "action_handoff"


def test_policy_hands_over_after_a_form_fails_twice_overruling_the_loop(escalation_policy, domain):
    events = [
        ActionExecuted("action_listen"),
        said("查订单", "query_order"),
        ActionExecuted("order_form"),
        ActiveLoop("order_form"),
        SlotSet("requested_slot", "order_id"),
        ActionExecuted("action_listen"),
        said("123", "inform"),
        ActionExecuted("order_form"),
        SlotSet("form_failures", 1.0),
        ActionExecuted("action_listen"),
        said("abc", "inform"),
        ActionExecuted("order_form"),
        SlotSet("form_failures", 2.0),
    ]
    action, prediction = predicted(escalation_policy, domain, events)
    assert action == "action_handoff" and prediction.is_no_user_prediction
    assert prediction.policy_priority == 5


def test_policy_stays_silent_while_a_human_has_the_conversation(escalation_policy, domain):
    events = [
        ActionExecuted("action_listen"),
        said("转人工", "ask_human"),
        ActionExecuted("action_handoff"),
        SlotSet("handoff_reason", "customer_request"),
        ActionExecuted("action_listen"),
        said("垃圾", "insult"),
    ]
    assert predicted(escalation_policy, domain, events)[0] is None
