"""Simulated visitors for `make bench` and `make soak`: conversations from the flows.

Each flow is a list of turns and each turn a few ways people type it (simplified and
traditional, emoji, no punctuation), so no two visitors need send the same text. A
conversation has 6 to 10 turns. None of them asks for a person, so every path does the
same work; the bench counts replies that came out of bot mode anyway.
"""

from __future__ import annotations

import random
from typing import List, Sequence, Tuple

Turn = Tuple[str, ...]

GREET: Turn = ("你好", "在吗", "您好", "哈喽", "在不在", "hello", "你好呀😊", "妳好")
THANK: Turn = ("谢谢", "好的谢谢", "谢啦", "多谢🙏", "謝謝", "ok 谢谢")
NOTHING_ELSE: Turn = ("没有了", "没了", "没有别的了", "沒有了")
BYE: Turn = ("拜拜", "再见", "886", "再見", "bye")

FLOWS: Sequence[Sequence[Turn]] = (
    # Order status, with a wait and a chase.
    (
        GREET,
        ("帮我查一下订单", "我的快递到哪了", "查下我的订单", "訂單到哪裡了"),
        ("等一下我找找", "稍等 我找下订单号", "等等哈我翻一下"),
        ("订单号2023112500123456", "2023112500123456", "单号是2023112500123456"),
        ("还要等多久啊", "快点啊", "好了没"),
        THANK,
        NOTHING_ELSE,
        BYE,
    ),
    # Return: an eligible order, one past the window, a custom-made one.
    (
        GREET,
        ("我要退货", "我想退货", "我想退貨", "申请退货"),
        ("JD20231118001", "订单号AB1234567890", "JD20231120002"),
        ("尺码不合适", "不喜欢", "质量不太好"),
        ("好的谢谢", "好吧谢谢"),
        NOTHING_ELSE,
        BYE,
    ),
    # Complaint in five steps.
    (
        ("您好", "你好", "在吗"),
        ("收到的东西是坏的😡", "收到的东西是坏的", "東西收到就是壞的"),
        ("我姓王", "我姓李", "我姓張"),
        ("昨天下午", "前天", "昨天"),
        ("没有订单号", "没有"),
        ("换个新的", "给我换个新的"),
        NOTHING_ELSE,
    ),
    # Return in traditional characters, eligible order.
    (
        ("哈喽", "你好", "妳好"),
        ("我想退貨", "我要退貨"),
        ("JD20231118001",),
        ("尺碼不合適", "尺碼太小了"),
        THANK,
        BYE,
    ),
    # A suggestion and praise.
    (
        ("早上好", "你好", "在吗"),
        ("建议你们周末也发货", "建议你们增加夜间客服", "建議週末也發貨"),
        NOTHING_ELSE,
        ("你们客服真耐心", "你们服务真好", "五星好评"),
        ("谢谢你", "谢谢"),
        BYE,
    ),
    # Order status with a chase before the id, then small talk to close.
    (
        ("在不在", "你好", "在吗"),
        ("我的快递到哪了", "物流到哪了", "我的快遞到哪了"),
        ("物流三天没更新了", "三天没动了"),
        ("快点啊", "还要等多久"),
        ("2023112000887766", "订单号2023112000887766"),
        ("好的", "好的谢谢"),
        ("你们服务真好", "五星好评"),
        ("谢谢", "谢啦"),
        NOTHING_ELSE,
        BYE,
    ),
)


def conversation(rng: random.Random) -> List[str]:
    """One visitor's turns: a flow, and one way of typing each of its turns."""
    flow = FLOWS[rng.randrange(len(FLOWS))]
    return [turn[rng.randrange(len(turn))] for turn in flow]


def crowd(size: int, seed: int) -> List[List[str]]:
    rng = random.Random(seed)
    return [conversation(rng) for _ in range(size)]


def think_time(rng: random.Random, mean_s: float) -> float:
    """Seconds a visitor takes to read a reply and type the next message (±50%)."""
    return rng.uniform(0.5, 1.5) * mean_s
