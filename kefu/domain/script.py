"""Simplified/traditional Chinese detection and conversion (OpenCC)."""

from __future__ import annotations

import functools
import re
from typing import Dict, Literal, Tuple

Script = Literal["simplified", "traditional", "unknown"]


@functools.cache
def _converter(config: str):  # type: ignore[no-untyped-def]
    # Created on first use: building the dictionaries is not import-time work.
    import opencc

    return opencc.OpenCC(config)


def to_simplified(text: str) -> str:
    return str(_converter("t2s.json").convert(text))


def to_traditional(text: str) -> str:
    return str(_converter("s2tw.json").convert(text))


def detect_script(text: str) -> Script:
    """Which script the writer uses, judged by characters that differ between the two.

    Most Chinese characters are shared; only those that a conversion changes carry
    evidence. Ties (including text with no Chinese at all) are "unknown".
    """
    traditional_only = sum(a != b for a, b in zip(text, to_simplified(text), strict=False))
    simplified_only = sum(a != b for a, b in zip(text, to_traditional(text), strict=False))
    if traditional_only > simplified_only:
        return "traditional"
    if simplified_only > traditional_only:
        return "simplified"
    return "unknown"


def normalise(text: str) -> str:
    """Simplified text for NLU, with character offsets kept.

    OpenCC converts phrase by phrase and may, rarely, change the length; entity
    offsets must stay valid, so fall back to a per-character conversion then.
    """
    converted = to_simplified(text)
    if len(converted) == len(text):
        return converted
    per_char = [to_simplified(ch) for ch in text]
    return "".join(c if len(c) == 1 else ch for c, ch in zip(per_char, text, strict=True))


@functools.lru_cache(maxsize=8)
def _shorthand_pattern(keys: Tuple[str, ...]) -> re.Pattern[str]:
    # Standing alone: no latin letter or digit on either side, nor a digit after a
    # separator (TK-2025-0412 is an order id).
    alternatives = "|".join(sorted(keys, key=len, reverse=True))
    return re.compile(
        rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])(?![-_ ]?[0-9])", re.IGNORECASE
    )


def expand_shorthand(text: str, table: Dict[str, str]) -> str:
    """Pinyin initials written out (tk几天到账 → 退款几天到账), same length as the text."""
    if not table or not any(c.isascii() and c.isalpha() for c in text):
        return text
    pattern = _shorthand_pattern(tuple(sorted(table)))
    return pattern.sub(lambda m: table[m.group(0).lower()], text)
