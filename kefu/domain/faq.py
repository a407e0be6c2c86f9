"""FAQ answers as a visitor reads them: the operator's text from policy/faq.yml, the
numbers from the other policy files, and the conversation's own context (the order
just looked up, the return or ticket just recorded) when the topic has a variant
for it."""

from __future__ import annotations

import string
from typing import Dict, Mapping, Optional

from kefu.domain.policy.loader import FaqTopic, Policy

RESPONSE_PREFIX = "utter_faq/"
_WEEKDAYS = "一二三四五六日"
# Which conversation facts each variant needs before it can be used.
VARIANT_NEEDS = {
    "with_return": ("number", "return_type"),
    "with_ticket": ("number",),
    "with_order": ("order_id", "status_text"),
}


def topic_of(response: str) -> Optional[str]:
    return response[len(RESPONSE_PREFIX) :] if response.startswith(RESPONSE_PREFIX) else None


def service_days(weekdays: tuple) -> str:
    days = sorted(set(weekdays))
    if days == list(range(1, 8)):
        return "每天"
    if days == list(range(days[0], days[-1] + 1)):
        return f"周{_WEEKDAYS[days[0] - 1]}至周{_WEEKDAYS[days[-1] - 1]}"
    return "、".join(f"周{_WEEKDAYS[d - 1]}" for d in days)


def policy_values(policy: Policy) -> Dict[str, str]:
    hours = policy.escalation.hours
    return {
        "service_hours": f"{hours.open:%H:%M}-{hours.close:%H:%M}",
        "service_days": service_days(hours.weekdays),
        "return_window_days": str(policy.service.return_window_days),
        "follow_up_hours": str(policy.service.follow_up_hours),
    }


def choose(topic: FaqTopic, context: Mapping[str, Mapping[str, str]]) -> tuple[str, Dict[str, str]]:
    """The answer text to use, and the context values it may need.

    `context` has `return`, `ticket` and `order` facts of this conversation; the
    most specific variant whose facts are all known wins (return, ticket, order).
    """
    for variant, facts_key in (
        ("with_return", "return"),
        ("with_ticket", "ticket"),
        ("with_order", "order"),
    ):
        facts = context.get(facts_key) or {}
        if variant in topic.variants and all(facts.get(n) for n in VARIANT_NEEDS[variant]):
            return topic.variants[variant], dict(facts)
    return topic.answer, {}


def render(text: str, values: Mapping[str, str]) -> str:
    names = {name for _, name, _, _ in string.Formatter().parse(text) if name}
    return text.format(**{n: values.get(n, "") for n in names})
