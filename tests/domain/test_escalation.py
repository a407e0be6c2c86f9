"""kefu.domain.escalation decides every hand-over, the desk's own failures included."""

from __future__ import annotations

from kefu.domain import escalation


def test_the_desks_failures_are_decided_in_one_place(policy):
    rules = policy.escalation
    assert escalation.assistant_failed(rules) is None
    for facts, note in [
        ({"rasa_up": False}, "Rasa unavailable"),
        ({"replied": False}, "no reply from the assistant"),
        ({"action_server_up": False}, "action server down"),
        ({"rasa_up": False, "replied": False}, "Rasa unavailable"),
    ]:
        decision = escalation.assistant_failed(rules, **facts)
        assert decision is not None and decision.code == "bot_failure" and decision.note == note


def test_a_safety_report_while_waiting_jumps_the_queue_and_nothing_less_does(policy):
    rules = policy.escalation
    safety = escalation.Turn("report_safety", risks=("safety",))
    decision = escalation.while_waiting("customer_request", [safety], rules)
    assert decision is not None and decision.code == "safety"
    assert escalation.while_waiting("safety", [safety], rules) is None  # already as urgent
    chat = escalation.Turn("greet")
    assert escalation.while_waiting("customer_request", [chat], rules) is None
