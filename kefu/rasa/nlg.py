"""Rasa NLG that sends every response through kefu's phrasing guard.

Configured in endpoints.yml as `nlg: type: kefu.rasa.nlg.GuardedNaturalLanguageGenerator`.
Responses sent by custom actions are named (`utter_message(response=...)`), so
Rasa renders them here too: one place for every bot text.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List

from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from kefu.domain import faq
from kefu.domain.phrasing.context import ReplyContext, surname_of, title_for
from kefu.domain.phrasing.guard import Guard
from kefu.domain.policy import load_policy

logger = logging.getLogger(__name__)
PHRASE_PREFIX = "phrase_"


class GuardedNaturalLanguageGenerator(TemplatedNaturalLanguageGenerator):
    def __init__(
        self,
        endpoint_config: EndpointConfig | None = None,
        domain: Domain | None = None,
        guard: Guard | None = None,
    ) -> None:
        super().__init__((domain or Domain.empty()).responses)
        self.guard = guard or Guard(load_policy())
        if guard is None:
            # Built once at start-up: fit the tone model now, not on the first reply.
            self.guard.checker.warm()

    async def generate(
        self,
        utter_action: str,
        tracker: DialogueStateTracker,
        output_channel: str,
        **kwargs: Any,
    ) -> Dict[str, Any] | None:
        context = reply_context(tracker)
        variables = {**self.guard.variables(context), **kwargs}
        slots = tracker.current_slot_values()
        topic = faq.topic_of(utter_action)
        if topic in self.guard.policy.faq:
            response: Dict[str, Any] | None = self.faq_answer(str(topic), slots, variables)
        elif utter_action in self.responses:
            response = self.generate_from_slots(utter_action, slots, output_channel, **variables)
        else:
            response = self.policy_phrase(utter_action, slots, variables)
        if response is not None:
            response["text"] = self.guard.apply(response.get("text"), context)
        return response

    def faq_answer(
        self, topic: str, slots: Dict[str, Any], variables: Dict[str, Any]
    ) -> Dict[str, Any]:
        """The operator's answer (policy/faq.yml), in this conversation's context."""
        policy = self.guard.policy
        text, facts = faq.choose(policy.faq[topic], faq_context(slots))
        values = {**{k: str(v) for k, v in variables.items()}, **faq.policy_values(policy)}
        return {"text": faq.render(text, {**values, **facts})}

    def policy_phrase(
        self, name: str, slots: Dict[str, Any], variables: Dict[str, Any]
    ) -> Dict[str, Any] | None:
        """`phrase_<scene>` names a standard phrase in the policy file."""
        if not name.startswith(PHRASE_PREFIX):
            return None
        phrase = self.guard.policy.phrase(name[len(PHRASE_PREFIX) :])
        if phrase is None:
            logger.warning("No response or policy phrase named '%s'.", name)
            return None
        return self._fill_response({"text": phrase.text}, slots, **variables)


def faq_context(slots: Dict[str, Any]) -> Dict[str, Dict[str, str]]:
    """What this conversation already did, for the FAQ answers that build on it."""

    def pick(**names: str) -> Dict[str, str]:
        return {key: str(slots[slot]) for key, slot in names.items() if slots.get(slot)}

    return {
        "order": pick(order_id="order_id", status_text="order_status", eta="order_eta"),
        "return": pick(number="return_number", return_type="return_kind", order_id="order_id"),
        "ticket": pick(number="ticket_number"),
    }


def reply_context(tracker: DialogueStateTracker) -> ReplyContext:
    user_turns: List[UserUttered] = [e for e in tracker.events if isinstance(e, UserUttered)]
    script = "unknown"
    for turn in reversed(user_turns):
        seen = (turn.parse_data or {}).get("script")
        if seen in ("simplified", "traditional"):
            script = seen
            break
    # The chat page sends the browser's zone as message metadata.
    timezone = next(
        (
            str(zone)
            for turn in reversed(user_turns)
            if isinstance(zone := (turn.metadata or {}).get("timezone"), str)
        ),
        None,
    )
    name = tracker.get_slot("name")
    return ReplyContext(
        script=script,  # type: ignore[arg-type]
        timezone=timezone,
        surname=surname_of(name),
        # As the visitor said it: a title slot (asked once), or 王女士 in their words.
        title=tracker.get_slot("title")
        or title_for(name, ((t.parse_data or {}).get("text") or t.text or "" for t in user_turns)),
    )
