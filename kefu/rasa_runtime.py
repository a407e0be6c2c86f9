"""Fixes for Rasa 3.6, installed once per Rasa process by kefu's NLG.

1. The action-server deadline. Rasa waits 300 s for a custom action and offers no
   setting; kefu sets it from KEFU_ACTION_TIMEOUT_S (8 s by default: under the desk's
   10 s, above an order lookup's 5 s).
2. The hot path.
Profiled (cProfile, `handle_message` in-process): 64% of a message's time went into
`RemoteAction._validate_action_result`, because `jsonschema.validate()` checks the
constant response schema against the draft 2020-12 meta-schema on every call. Here
the validator is compiled once; the schema, the validation and the error message are
Rasa's own.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Dict

_installed = False
DEFAULT_ACTION_TIMEOUT_S = 8


@functools.lru_cache(maxsize=1)
def action_result_validator() -> Any:
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    spec = RemoteAction.action_response_format_spec()
    cls = validator_for(spec)
    cls.check_schema(spec)  # once, not per action call
    return cls(spec)


def _validate_action_result(self: Any, result: Dict[str, Any]) -> bool:
    from jsonschema import ValidationError
    from rasa.shared.constants import DOCS_BASE_URL

    try:
        action_result_validator().validate(result)
        return True
    except ValidationError as e:
        e.message += (
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise e


def action_timeout_s() -> int:
    raw = os.environ.get("KEFU_ACTION_TIMEOUT_S", "")
    try:
        return max(1, int(float(raw))) if raw else DEFAULT_ACTION_TIMEOUT_S
    except ValueError:
        return DEFAULT_ACTION_TIMEOUT_S


def install() -> None:
    """Idempotent: the compiled schema check, and the action-server deadline."""
    global _installed
    if _installed:
        return
    from rasa.core.actions import action

    action.RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]
    # Read by RemoteAction.run at call time (`timeout=DEFAULT_REQUEST_TIMEOUT`).
    action.DEFAULT_REQUEST_TIMEOUT = action_timeout_s()  # type: ignore[attr-defined]
    _installed = True
