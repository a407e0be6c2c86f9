"""Event.resolve_by_type from a name → class map built once.

Rasa walked every subclass of Event for each stored event of each turn.
"""

from __future__ import annotations

from typing import Any, Dict

from kefu.rasa.fixes.base import Patch, RuntimeFix

_event_types: Dict[str, Any] = {}


def resolve_by_type(type_name: str, default: Any = None) -> Any:
    cls = _event_types.get(type_name)
    if cls is not None:
        return cls
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    # Rebuilt on a miss, in case a subclass was defined since.
    for candidate in all_subclasses(Event):
        _event_types.setdefault(candidate.type_name, candidate)
    cls = _event_types.get(type_name)
    if cls is not None:
        return cls
    return FIX.patch("resolve_by_type").call_original(type_name, default)


FIX = RuntimeFix(
    name="event_types",
    summary="event classes looked up by name in a map built once",
    patches=[
        Patch(
            "rasa.shared.core.events:Event",
            "resolve_by_type",
            resolve_by_type,
            fingerprint="b5cf570fa7f286c7",
        )
    ],
    on_uninstall=_event_types.clear,
)
