"""Who the bot is talking to, as far as replies need to know."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from kefu.domain.script import Script

COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "慕容", "皇甫", "令狐", "尉迟", "长孙")
# 小姐 is rendered as 女士: the neutral modern form.
TITLES = {"先生": "先生", "女士": "女士", "小姐": "女士"}


@dataclass(frozen=True)
class ReplyContext:
    script: Script = "unknown"
    surname: str | None = None
    title: str | None = None  # 先生 / 女士, only when the visitor said so
    now: datetime | None = None
    timezone: str | None = None  # the visitor's IANA zone, if their browser said

    @property
    def addressee(self) -> str:
        """王先生 / 王女士 when the visitor gave both, else 您: never a guessed gender."""
        if self.surname and self.title:
            return f"{self.surname}{self.title}"
        return "您"


def surname_of(name: str | None) -> str | None:
    name = (name or "").strip()
    if not name:
        return None
    for compound in COMPOUND_SURNAMES:
        if name.startswith(compound):
            return compound
    return name[0]


def title_for(name: str | None, texts: Iterable[str]) -> str | None:
    """The title the visitor used right after their name (叫我王女士), if any."""
    if not name:
        return None
    pattern = re.compile(re.escape(name) + r"\s*(先生|女士|小姐)")
    for text in texts:
        match = pattern.search(text or "")
        if match:
            return TITLES[match.group(1)]
    return None
