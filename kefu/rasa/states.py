"""Dialogue states as hashable keys (for the caches of TED's predictions and of states)."""

from __future__ import annotations

from typing import Any, Dict, Hashable, List, Optional

_TEXT_KEYS = frozenset({"text", "action_text"})


def freeze_states(states: Any) -> Optional[Hashable]:
    """A hashable copy of dialogue states, or None when a state carries text."""
    if isinstance(states, dict):
        if _TEXT_KEYS.intersection(states):
            return None
        items = []
        for key in sorted(states):
            frozen = freeze_states(states[key])
            if frozen is None and states[key] is not None:
                return None
            items.append((key, frozen))
        return tuple(items)
    if isinstance(states, (list, tuple)):
        out = []
        for item in states:
            frozen = freeze_states(item)
            if frozen is None and item is not None:
                return None
            out.append(frozen)
        return ("seq", tuple(out))
    if isinstance(states, (str, int, float, bool)) or states is None:
        return states
    return None  # anything else (features, arrays): not cached


def copy_states(states: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """States are dicts of sub-state dicts of strings and tuples: two levels to copy."""
    return [
        {key: dict(sub) if isinstance(sub, dict) else sub for key, sub in state.items()}
        for state in states
    ]
