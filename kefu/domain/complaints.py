"""A complaint read back in the bot's own words: what happened, when, which order and
what the visitor wants, each short, without the visitor's filler (我要投诉，你们…).

No language model: clause-level trimming with the words a complaint is made of,
and dates resolved against today so the ticket says 2026-12-01 (昨天), not 昨天.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import List, Optional

# Openers and fillers that say nothing about what happened.
_OPENERS = re.compile(
    r"^(?:你好|您好|在吗|hi|hello|喂|那个|就是|然后|还有|而且|另外|对了|我说|我想说|我跟你说|"
    r"我要|我想|我得|我必须|必须|我就是想|请问)*"
    r"(?:投诉|举报|反映|反馈|吐槽|说一下|说说|问一下)?(?:一下|下)?"
    r"(?:你们家|你们店|你们|你家|贵店|这家店|店家|商家)?(?:的)?"
)
_FILLER_CLAUSE = re.compile(
    r"^(?:我要投诉|我想投诉|我要举报|我很生气|气死我了|太过分了|真的是|无语|服了|"
    r"你们怎么回事|怎么回事|什么情况|搞什么|真是的|唉|哎|我真的服了)[！!。.？?~～]*$"
)
_PARTICLES = re.compile(r"[啊呀吧呢嘛哦哈啦咯了]+$")
_CLAUSE_SPLIT = re.compile(r"[，,。！!？?；;~～\n]+")
_MAX_CLAUSES = 3
_MAX_CHARS = 40

WANTS = (
    ("退款", ("退款", "退钱", "把钱退", "退我钱", "退货退款")),
    ("退货", ("退货", "退掉", "退回去")),
    ("换货", ("换货", "换一个", "换个新", "换新", "重新发", "补发", "再发一个")),
    ("道歉", ("道歉", "给个说法", "解释")),
    ("处理相关人员", ("处理", "处分", "开除", "批评", "教育")),
    ("尽快送达", ("尽快送", "快点送", "催一下", "尽快发")),
)
_RELATIVE_DAYS = {
    "今天": 0,
    "今早": 0,
    "今晚": 0,
    "刚才": 0,
    "刚刚": 0,
    "昨天": 1,
    "昨晚": 1,
    "前天": 2,
    "大前天": 3,
}
_CN = {
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
}
_WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}


def clauses(text: str) -> List[str]:
    out = []
    for raw in _CLAUSE_SPLIT.split(text or ""):
        clause = raw.strip()
        if not clause or _FILLER_CLAUSE.match(clause):
            continue
        clause = _OPENERS.sub("", clause, count=1).strip()
        clause = _PARTICLES.sub("", clause).strip()
        if len(clause) >= 2:
            out.append(clause)
    return out


def what(text: str) -> Optional[str]:
    """What happened, in a few short clauses (None if the text says nothing)."""
    kept = clauses(text)[:_MAX_CLAUSES]
    if not kept:
        return None
    summary = "，".join(kept)
    return summary if len(summary) <= _MAX_CHARS else summary[: _MAX_CHARS - 1] + "…"


def when(text: str, today: date) -> Optional[str]:
    """The day it happened, resolved against today, with what the visitor said."""
    text = (text or "").strip()
    if not text:
        return None
    for word, days in sorted(_RELATIVE_DAYS.items(), key=lambda kv: -len(kv[0])):
        if word in text:
            day = today - timedelta(days=days)
            return f"{day.isoformat()}（{_short(text)}）"
    m = re.search(r"(?:上|这)(?:个)?(?:周|星期|礼拜)([一二三四五六日天])", text)
    if m:
        offset = today.weekday() - _WEEKDAY[m.group(1)]
        back = offset + (7 if text[m.start()] == "上" else 0)
        if text[m.start()] == "这" and offset < 0:
            back = offset + 7
        return f"{(today - timedelta(days=back)).isoformat()}（{_short(text)}）"
    m = re.search(r"(?:(\d{4})[年\-/.])?(\d{1,2})[月\-/.](\d{1,2})", text)
    if m:
        year = int(m.group(1) or today.year)
        try:
            day = date(year, int(m.group(2)), int(m.group(3)))
        except ValueError:
            return _short(text)
        if not m.group(1) and day > today:
            day = day.replace(year=year - 1)
        return day.isoformat()
    m = re.search(r"(\d+|[一二两三四五六七八九十]+)天(?:前|之前|以前)", text)
    if m:
        n = int(m.group(1)) if m.group(1).isdigit() else _CN.get(m.group(1))
        if n is not None:
            return f"{(today - timedelta(days=n)).isoformat()}（{_short(text)}）"
    return _short(text)


def want(text: str) -> Optional[str]:
    """What the visitor asks for, named the way a ticket names it."""
    text = (text or "").strip()
    if not text:
        return None
    named = [label for label, words in WANTS if any(w in text for w in words)]
    if named:
        return "、".join(dict.fromkeys(named))
    return what(text)


def _short(text: str) -> str:
    text = _PARTICLES.sub("", text.strip(" 。.！!"))
    return text if len(text) <= 20 else text[:19] + "…"
