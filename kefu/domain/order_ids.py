"""Order ids as visitors type them: 2023-1125-0012-3456, JD 20231118001, ２０２３…

An id is 10-20 digits, or two letters then 6-18 digits (the NLU's pattern). People
group the digits with spaces or dashes; a run of digits and separators is taken
whole when it forms an id, so 2023 1125 0012 3456 is one id, while an id and a
phone number next to each other stay two numbers.
"""

from __future__ import annotations

import re
import unicodedata
from typing import List, Tuple

ORDER_ID = re.compile(r"(?:[0-9]{10,20}|[A-Z]{2}[0-9]{6,18})")
_RUN = re.compile(r"(?<![0-9A-Za-z])[A-Za-z0-9](?:[ \t\-_—–]{0,2}[A-Za-z0-9])*(?![0-9A-Za-z])")
_SEPARATORS = re.compile(r"[ \t\-_—–]+")


def _half_width(text: str) -> str:
    out = []
    for ch in text:
        folded = unicodedata.normalize("NFKC", ch)
        out.append(folded if len(folded) == 1 else ch)
    return "".join(out)


def find_all(text: str) -> List[Tuple[str, int, int]]:
    """Every order id in the text: (normalised id, start, end) with spans of the input."""
    text = _half_width(text or "")
    found = []
    for run in _RUN.finditer(text):
        joined = _SEPARATORS.sub("", run.group(0)).upper()
        if ORDER_ID.fullmatch(joined):
            found.append((joined, run.start(), run.end()))
            continue
        # Not one id as a whole: look at its separated pieces on their own.
        offset = run.start()
        for piece in re.finditer(r"[A-Za-z0-9]+", run.group(0)):
            value = piece.group(0).upper()
            if ORDER_ID.fullmatch(value):
                found.append((value, offset + piece.start(), offset + piece.end()))
    return found


def find(text: str | None) -> str | None:
    found = find_all(text or "")
    return found[0][0] if found else None
