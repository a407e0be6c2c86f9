"""A stored conversation as a Rasa test story (`kefu review story`), written by Rasa's own
YAML story writer in the tests/stories/ format: `user:` with the text (entities
annotated inline) and `intent:`, then the actions, forms and slots that followed.

The story is what the bot did, up to the first turn the bot did not answer itself (the
hand-over to an agent). Edit the actions it took wrongly to what it should have done,
and save it under tests/stories/: a regression test from a real chat.
"""

from __future__ import annotations

import io
from typing import Any, Dict, List, Optional

from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    Event,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.training_data.story_writer.yaml_story_writer import YAMLStoryWriter
from rasa.shared.core.training_data.structures import Story
from rasa.shared.utils.io import write_yaml
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import LiteralScalarString

EXTERNAL_PREFIX = "EXTERNAL: "
SKIPPED_ACTIONS = frozenset(
    {ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME, "action_unlikely_intent"}
)


def story_events(events: List[Dict[str, Any]]) -> tuple[List[Event], Optional[str]]:
    """The events a test story keeps, and why it stops early (None: it did not)."""
    parsed = [Event.from_parameters(e) for e in events]
    parsed = [e for e in parsed if e is not None]
    kept: List[Event] = []
    after_session_start = True  # slots carried into a session are not the visitor's doing
    pending_user: Optional[UserUttered] = None
    answered = False
    for event in parsed:
        if isinstance(event, SessionStarted) or (
            isinstance(event, ActionExecuted) and event.action_name == ACTION_SESSION_START_NAME
        ):
            after_session_start = True
            continue
        if isinstance(event, UserUttered):
            if pending_user is not None and not answered:
                kept.remove(pending_user)
                return kept, "the bot stopped answering here (the conversation went to an agent)"
            after_session_start = False
            pending_user = user_step(event)
            answered = False
            kept.append(pending_user)
        elif isinstance(event, ActionExecuted):
            if event.action_name in SKIPPED_ACTIONS or not event.action_name:
                continue
            answered = True
            kept.append(event)
        elif isinstance(event, SlotSet) and not after_session_start:
            kept.append(event)
        elif isinstance(event, ActiveLoop) and not after_session_start:
            kept.append(event)
    if pending_user is not None and not answered:
        kept.remove(pending_user)
        return kept, "the last message was not answered by the bot"
    return kept, None


def user_step(event: UserUttered) -> UserUttered:
    """The visitor's turn as a test story writes it; the desk's opening greeting (a
    triggered intent) as the intent alone."""
    text = event.text
    if text and text.startswith((EXTERNAL_PREFIX, "/")):
        text = None
    return UserUttered(
        text,
        event.intent,
        [e for e in event.entities if {"entity", "start", "end", "value"} <= set(e)],
        timestamp=event.timestamp,
    )


def _user_first(step: Any) -> Any:
    if "user" not in step:
        return step
    ordered = CommentedMap()
    ordered["user"] = LiteralScalarString(str(step["user"]).rstrip("\n") + "\n")
    for key, value in step.items():
        if key != "user":
            ordered[key] = value
    return ordered


def as_test_story(conversation_id: str, events: List[Dict[str, Any]]) -> str:
    """YAML of one test story named after the conversation."""
    kept, stopped = story_events(events)
    if not any(isinstance(e, UserUttered) for e in kept):
        raise ValueError(f"conversation {conversation_id} has no turn the bot answered")
    story = Story.from_events(kept, f"conversation {conversation_id}")
    result = YAMLStoryWriter().stories_to_yaml(story.story_steps, is_test_story=True)
    for written in result.get("stories", []):
        # `user:` first, as in tests/stories/.
        written["steps"] = [_user_first(step) for step in written["steps"]]
    stream = io.StringIO()
    write_yaml(result, stream, True)
    header = f"# kefu review story {conversation_id}: what the bot did in this chat.\n"
    if stopped:
        header += f"# Stopped at the first turn the bot did not answer: {stopped}.\n"
    return header + stream.getvalue()
