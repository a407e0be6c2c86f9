"""Dialogue states computed once per tracker snapshot, copied only where they are edited.

Each policy rebuilt the states by replaying every event of the tracker (15% of a message,
three times per prediction). The states of one snapshot are kept on the tracker until
its next event and each caller gets its own copy (featurizers edit them in place); the
featurizer copies only the last `max_history` states it keeps.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from kefu.rasa.fixes.base import Patch, RuntimeFix
from kefu.rasa.states import copy_states, freeze_states


def _original_past_states(*args: Any) -> List[Dict[str, Any]]:
    return FIX.patch("past_states").call_original(*args)  # type: ignore[no-any-return]


def shared_past_states(
    tracker: Any,
    domain: Any,
    omit_unset_slots: bool = False,
    ignore_rule_only_turns: bool = False,
    rule_only_data: Optional[Dict[str, Any]] = None,
) -> List[Dict[str, Any]]:
    """The tracker's past states, computed once per snapshot of its events (shared: callers
    copy what they may change)."""
    args = (tracker, domain, omit_unset_slots, ignore_rule_only_turns, rule_only_data)
    frozen_rule_data = freeze_states(rule_only_data)
    if frozen_rule_data is None and rule_only_data is not None:
        return _original_past_states(*args)
    events = tracker.events
    last = events[-1] if events else None
    snapshot = tracker.__dict__.get("_kefu_states")
    if (
        snapshot is None
        or snapshot[0] is not events
        or snapshot[1] != len(events)
        or snapshot[2] is not last
        or snapshot[3] is not domain
    ):
        snapshot = (events, len(events), last, domain, {})
        tracker.__dict__["_kefu_states"] = snapshot
    key = (bool(omit_unset_slots), bool(ignore_rule_only_turns), frozen_rule_data)
    states = snapshot[4].get(key)
    if states is None:
        states = snapshot[4][key] = _original_past_states(*args)
    return states  # type: ignore[no-any-return]


def past_states(
    self: Any,
    domain: Any,
    omit_unset_slots: bool = False,
    ignore_rule_only_turns: bool = False,
    rule_only_data: Optional[Dict[str, Any]] = None,
) -> List[Dict[str, Any]]:
    """DialogueStateTracker.past_states from the snapshot cache, as the caller's copy."""
    return copy_states(
        shared_past_states(self, domain, omit_unset_slots, ignore_rule_only_turns, rule_only_data)
    )


def prediction_states(
    self: Any,
    trackers: List[Any],
    domain: Any,
    use_text_for_last_user_input: bool = False,
    ignore_rule_only_turns: bool = False,
    rule_only_data: Optional[Dict[str, Any]] = None,
    ignore_action_unlikely_intent: bool = False,
) -> List[List[Dict[str, Any]]]:
    """MaxHistoryTrackerFeaturizer.prediction_states, Rasa's steps in Rasa's order, the
    copy taken after slicing to `max_history` (only kept states are edited)."""
    from rasa.core.featurizers.tracker_featurizers import TrackerFeaturizer

    if type(self)._create_states is not TrackerFeaturizer._create_states:
        return FIX.patch("prediction_states").call_original(  # type: ignore[no-any-return]
            self,
            trackers,
            domain,
            use_text_for_last_user_input,
            ignore_rule_only_turns,
            rule_only_data,
            ignore_action_unlikely_intent,
        )
    trackers_as_states = []
    for tracker in trackers:
        if type(tracker).past_states is past_states:
            states = shared_past_states(
                tracker, domain, False, ignore_rule_only_turns, rule_only_data
            )
        else:  # a tracker class with its own past_states (training's cached trackers)
            states = tracker.past_states(
                domain, ignore_rule_only_turns=ignore_rule_only_turns, rule_only_data=rule_only_data
            )
        if ignore_action_unlikely_intent:
            states = self._remove_action_unlikely_intent_from_states(states)
        trackers_as_states.append(copy_states(self.slice_state_history(states, self.max_history)))
    self._choose_last_user_input(trackers_as_states, use_text_for_last_user_input)
    return trackers_as_states


FIX = RuntimeFix(
    name="dialogue_states",
    summary="a tracker's dialogue states computed once per snapshot, copied only when kept",
    patches=[
        Patch(
            "rasa.shared.core.trackers:DialogueStateTracker",
            "past_states",
            past_states,
            fingerprint="5463eefb5c69d27f",
        ),
        Patch(
            "rasa.core.featurizers.tracker_featurizers:MaxHistoryTrackerFeaturizer",
            "prediction_states",
            prediction_states,
            fingerprint="451caf09a389e871",
        ),
    ],
)
