"""The custom-action deadline: Rasa waits 300 s for an action and offers no setting.

kefu sets it from KEFU_ACTION_TIMEOUT_S (8 s by default: under the desk's 10 s, above an
order lookup's 5 s). It is not a runtime fix: it is installed whatever KEFU_RUNTIME_FIXES
says, because the desk's own timeouts count on it.
"""

from __future__ import annotations

import os
from typing import Any, Optional

DEFAULT_ACTION_TIMEOUT_S = 8
_rasa_default: Optional[Any] = None


def action_timeout_s() -> int:
    raw = os.environ.get("KEFU_ACTION_TIMEOUT_S", "")
    try:
        return max(1, int(float(raw))) if raw else DEFAULT_ACTION_TIMEOUT_S
    except ValueError:
        return DEFAULT_ACTION_TIMEOUT_S


def install() -> int:
    """Read by RemoteAction.run at call time (`timeout=DEFAULT_REQUEST_TIMEOUT`)."""
    global _rasa_default
    from rasa.core.actions import action

    if _rasa_default is None:
        _rasa_default = action.DEFAULT_REQUEST_TIMEOUT
    action.DEFAULT_REQUEST_TIMEOUT = action_timeout_s()  # type: ignore[attr-defined]
    return int(action.DEFAULT_REQUEST_TIMEOUT)


def uninstall() -> None:
    global _rasa_default
    if _rasa_default is None:
        return
    from rasa.core.actions import action

    action.DEFAULT_REQUEST_TIMEOUT = _rasa_default  # type: ignore[attr-defined]
    _rasa_default = None


def current() -> int:
    from rasa.core.actions import action

    return int(action.DEFAULT_REQUEST_TIMEOUT)
