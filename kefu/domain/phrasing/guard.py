"""The one place every outgoing text passes: render, check, mirror the script."""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import datetime
from typing import Dict
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kefu.domain.phrasing.checker import Checker
from kefu.domain.phrasing.context import ReplyContext
from kefu.domain.policy.loader import Policy
from kefu.domain.script import to_traditional

logger = logging.getLogger(__name__)


class Guard:
    """Turns a template's text into what a visitor may see.

    A text that breaks a rule is repaired with the rules' literal fixes (你 → 您,
    但是 → 与此同时); if anything is still wrong, the whole text is replaced by the
    policy's `safe_fallback` phrase. Either way a warning is logged: a forbidden
    phrase never reaches a visitor, and the template gets fixed at the source.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.zone = ZoneInfo(policy.brand.timezone)
        self.checker = Checker.for_policy(policy)
        # Texts already found clean. Most replies are the same few templates, and a
        # check costs a jieba pass and every rule's patterns; repairs are not kept, so
        # each one is logged every time it happens.
        self._clean: "OrderedDict[str, None]" = OrderedDict()

    def variables(self, context: ReplyContext) -> Dict[str, str]:
        """Values for the {placeholders} a template may use."""
        zone = self.visitor_zone(context.timezone)
        now = (context.now or datetime.now(zone)).astimezone(zone)
        greeting = self.policy.greeting_at(now.time())
        named = context.addressee != "您"
        return {
            "brand": self.policy.brand.name,
            "bot_name": self.policy.brand.bot_name,
            "greeting": greeting,
            "addressee": context.addressee,
            # 王女士上午好 when known; the bare greeting otherwise.
            "salutation": f"{context.addressee}{greeting}" if named else greeting,
            # "王女士，" before a sentence when known; nothing otherwise.
            "vocative": f"{context.addressee}，" if named else "",
        }

    def visitor_zone(self, name: str | None) -> ZoneInfo:
        """The visitor's zone when it is a real one, else the policy's default."""
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                logger.info("ignoring unknown visitor time zone %r", name)
        return self.zone

    CLEAN_CACHE = 4096  # texts

    def enforce(self, text: str) -> str:
        """The text, repaired or replaced so that it breaks no rule."""
        if text in self._clean:
            self._clean.move_to_end(text)
            return text
        violations = self.checker.check(text)
        if not violations:
            self._clean[text] = None
            if len(self._clean) > self.CLEAN_CACHE:
                self._clean.popitem(last=False)
            return text
        broken = sorted({v.rule for v in violations})
        fixed = self.checker.fix(text)
        if not self.checker.check(fixed):
            logger.warning("phrasing guard fixed %s in %r", broken, text)
            return fixed
        logger.warning("phrasing guard replaced %r (breaks %s)", text, broken)
        return self.policy.phrases["safe_fallback"].text

    def apply(self, text: str | None, context: ReplyContext) -> str | None:
        if not text:
            return text
        text = self.enforce(text)
        if context.script == "traditional":
            text = to_traditional(text)
        return text
