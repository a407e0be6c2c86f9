"""RemoteAction._validate_action_result without recompiling the schema on every call.

Profiled: 64% of a message's time went here, because `jsonschema.validate()` checks the
constant response schema against its meta-schema on each call. The validator is compiled
once; a valid response is confirmed against the one `oneOf` branch its event type names,
anything else goes to Rasa's full schema for Rasa's own verdict and message.
"""

from __future__ import annotations

import functools
from typing import Any, Dict

from kefu.rasa.fixes.base import Patch, RuntimeFix


@functools.lru_cache(maxsize=1)
def action_result_validator() -> Any:
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    spec = RemoteAction.action_response_format_spec()
    cls = validator_for(spec)
    cls.check_schema(spec)  # once, not per action call
    return cls(spec)


@functools.lru_cache(maxsize=1)
def event_validators() -> Dict[str, Any]:
    """One validator per event type: every `oneOf` branch pins `event` to a constant, so
    checking the branch an event names gives the same verdict as trying all of them."""
    from rasa.shared.utils.schemas.events import EVENT_SCHEMA

    cls = type(action_result_validator())
    common = {key: value for key, value in EVENT_SCHEMA.items() if key != "oneOf"}
    validators = {}
    for branch in EVENT_SCHEMA["oneOf"]:
        schema = {**common, "allOf": [branch]}
        cls.check_schema(schema)
        validators[branch["properties"]["event"]["const"]] = cls(schema)
    return validators


def surely_valid(result: Any) -> bool:
    """True only when Rasa's schema accepts the response; False means "ask the schema"."""
    if type(result) is not dict:
        return False
    events = result.get("events", [])
    responses = result.get("responses", [])
    if type(events) is not list or type(responses) is not list:
        return False
    if any(type(response) is not dict for response in responses):
        return False
    validators = event_validators()
    for event in events:
        if type(event) is not dict or type(event.get("event")) is not str:
            return False
        validator = validators.get(event["event"])
        if validator is None or not validator.is_valid(event):
            return False
    return True


def validate_action_result(self: Any, result: Dict[str, Any]) -> bool:
    from jsonschema import ValidationError
    from rasa.shared.constants import DOCS_BASE_URL

    if surely_valid(result):
        return True
    try:
        action_result_validator().validate(result)  # Rasa's verdict and error message
        return True
    except ValidationError as e:
        e.message += (
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise e


FIX = RuntimeFix(
    name="action_schema",
    summary="custom-action responses validated with a schema compiled once",
    patches=[
        Patch(
            "rasa.core.actions.action:RemoteAction",
            "_validate_action_result",
            validate_action_result,
            fingerprint="f8cdb4be68123961",
        )
    ],
)
