"""A fix for Rasa 3.6's hot path, installed once per Rasa process by kefu's NLG.

Profiled (cProfile, `handle_message` in-process): 64% of a message's time went into
`RemoteAction._validate_action_result`, because `jsonschema.validate()` checks the
constant response schema against the draft 2020-12 meta-schema on every call. Here
the validator is compiled once; the schema, the validation and the error message are
Rasa's own.
"""

from __future__ import annotations

import functools
from typing import Any, Dict

_installed = False


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


def install() -> None:
    """Idempotent: replace RemoteAction's per-call schema check with the compiled one."""
    global _installed
    if _installed:
        return
    from rasa.core.actions.action import RemoteAction

    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]
    _installed = True
