"""The one place every outgoing text passes: render, check, mirror the script."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Dict
from zoneinfo import ZoneInfo

from kefu.phrasing.context import ReplyContext
from kefu.policy.loader import Policy
from kefu.script import to_traditional

logger = logging.getLogger(__name__)


class Guard:
    """Turns a template's text into what a visitor may see."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.zone = ZoneInfo(policy.brand.timezone)

    def variables(self, context: ReplyContext) -> Dict[str, str]:
        """Values for the {placeholders} a template may use."""
        now = (context.now or datetime.now(self.zone)).astimezone(self.zone)
        greeting = self.policy.greeting_at(now.time())
        named = context.addressee != "您"
        return {
            "brand": self.policy.brand.name,
            "bot_name": self.policy.brand.bot_name,
            "greeting": greeting,
            "addressee": context.addressee,
            # 王女士上午好 when known; the bare greeting otherwise.
            "salutation": f"{context.addressee}{greeting}" if named else greeting,
        }

    def apply(self, text: str | None, context: ReplyContext) -> str | None:
        if not text:
            return text
        if context.script == "traditional":
            text = to_traditional(text)
        return text
