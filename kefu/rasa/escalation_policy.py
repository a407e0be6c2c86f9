"""A dialogue policy that predicts `action_handoff` when kefu's escalation rules say so.

Rules and stories cover the plain cases (ask_human → action_handoff); this policy
makes the decision everywhere else the same way: in the middle of any form (at
any requested slot), in the survey, after a finished flow, on risks read from the
words whatever the intent, on anger measured over turns, and after repeated
fallbacks or form failures. It has
nothing to learn, runs above RulePolicy (priority 5 > 4) and abstains otherwise.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker

from kefu.domain.escalation import (
    FAILURE_SLOT,
    HANDOFF_ACTION,
    REASON_SLOT,
    RETAIN_SLOT,
    decide,
    facts_from_events,
)
from kefu.domain.policy import load_policy
from kefu.domain.policy.loader import Escalation

PRIORITY = 5  # above RulePolicy (4): an escalation wins a tie with a rule or a form


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True
)
class EscalationPolicy(Policy):
    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {"priority": PRIORITY}

    def __init__(
        self,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        featurizer: Any = None,
        escalation: Optional[Escalation] = None,
    ) -> None:
        super().__init__(config, model_storage, resource, execution_context, featurizer)
        self._escalation = escalation

    @property
    def escalation(self) -> Escalation:
        # Read from policy/escalation.yml on first prediction, not at import or training.
        if self._escalation is None:
            self._escalation = load_policy().escalation
        return self._escalation

    def train(
        self, training_trackers: List[TrackerWithCachedStates], domain: Domain, **kwargs: Any
    ) -> Resource:
        return self._resource  # nothing to learn: the rules are policy data

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> EscalationPolicy:
        return cls(config, model_storage, resource, execution_context)

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        result = self._default_predictions(domain)
        if HANDOFF_ACTION not in domain.action_names_or_texts:
            return self._prediction(result)
        if tracker.latest_action_name == HANDOFF_ACTION:
            # After a hand-over (or the supervisor's retain offer) the bot listens.
            result[domain.index_for_action(ACTION_LISTEN_NAME)] = 1.0
        elif self._should_hand_over(tracker):
            result[domain.index_for_action(HANDOFF_ACTION)] = 1.0
            # Inside a form, RulePolicy predicts the form again as a "no user" prediction,
            # and those outrank every other kind (Rasa's ensemble). An escalation must
            # win there too, so it is one as well; priority 5 then beats the form's 4.
            return self._prediction(result, is_no_user_prediction=True)
        return self._prediction(result)

    def _should_hand_over(self, tracker: DialogueStateTracker) -> bool:
        latest = tracker.latest_action_name
        after_message = latest == ACTION_LISTEN_NAME
        # A form that just rejected an answer once too often.
        after_form = latest is not None and latest == tracker.active_loop_name
        if not (after_message or after_form) or tracker.get_slot(REASON_SLOT):
            return False
        events = [
            event.as_dict()
            for event in _since_last_session(tracker)
            if isinstance(event, (UserUttered, SlotSet, SessionStarted))
            and (not isinstance(event, SlotSet) or event.key in (REASON_SLOT, RETAIN_SLOT))
        ]
        facts = facts_from_events(events, tracker.get_slot(FAILURE_SLOT))
        decision = decide(facts, self.escalation)
        if decision is None:
            return False
        if after_form:
            return decision.code == "bot_failure" and facts.form_failures > 0
        return True


def _since_last_session(tracker: DialogueStateTracker) -> List[Any]:
    events: List[Any] = []
    for event in reversed(tracker.events):
        events.append(event)
        if isinstance(event, SessionStarted):
            break
        if isinstance(event, ActionExecuted) and event.action_name == "action_session_start":
            break
    events.reverse()
    return events
