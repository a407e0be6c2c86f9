"""What an agent reads first: a conversation's summary in plain Chinese.

The bot's hand-over summary is codes (`greet → query_order`, `0 → 0.8`, `进度：booked`);
this turns it into lines an agent reads at a glance: the reason in words, what the visitor
asked, the order, what the bot already did, and the tone (平稳 or 激动) with the sentence
that showed it."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from kefu.store.conversations import Conversation

REASONS = {
    "safety": "安全问题（最优先）",
    "legal_media": "扬言投诉/找媒体",
    "abuse": "辱骂",
    "anger": "情绪激动",
    "compensation": "要求赔偿",
    "supervisor": "要求找主管",
    "customer_request": "访客要求转人工",
    "bot_failure": "机器人没能解决",
}
ASKED = {
    "query_order": "查订单物流",
    "request_return": "退换货",
    "complain": "投诉",
    "suggest": "提建议",
    "ask_human": "要求转人工",
    "ask_supervisor": "找主管",
    "demand_compensation": "要求赔偿",
    "threaten": "扬言投诉",
    "insult": "辱骂",
    "report_safety": "报告安全问题",
    "urge": "催促",
    "praise": "表扬",
    "out_of_scope": "问了与购物无关的问题",
    "faq": "常见问题",
}
# What the bot did, read from the slots it filled.
DONE = (
    ("order_id", "查询了订单{order_id}"),
    ("return_type", "登记了{return_type}申请"),
    ("complaint_what", "记录了投诉：{complaint_what}"),
)
CALLBACK_STAGES = {"phone": "正在询问手机号", "time": "正在询问方便的时间", "booked": "已登记"}
CALM, TENSE = "平稳", "激动"
TENSE_FROM = 0.5  # running tone score from which the visitor reads as agitated


def _asked(intents: List[str]) -> str:
    words: List[str] = []
    for intent in intents:
        word = ASKED.get(intent.split("/")[0])
        if word and word not in words:
            words.append(word)
    return "、".join(words)


def _tone(summary: Dict[str, Any]) -> str:
    trend = [float(v) for v in summary.get("tone_trend") or [] if isinstance(v, (int, float))]
    waiting = [float(t.get("tone_score") or 0) for t in summary.get("waiting_turns") or []]
    peak = max(trend + waiting, default=0.0)
    labels = set(summary.get("tone_labels") or [])
    tense = peak >= TENSE_FROM or bool(labels & {"insult", "anger"})
    sentence = summary.get("tone_sentence")
    if not tense:
        return CALM
    return f"{TENSE}：“{sentence}”" if sentence else TENSE


def readable(conversation: Conversation) -> List[Dict[str, str]]:
    """[{"label", "text"}], most useful first; lines with nothing to say are left out."""
    s = conversation.summary or {}
    slots: Dict[str, Any] = dict(s.get("slots") or {})
    lines: List[Dict[str, str]] = []

    def add(label: str, text: Optional[str]) -> None:
        if text:
            lines.append({"label": label, "text": text})

    reason = REASONS.get(conversation.reason or "", conversation.reason or "")
    if s.get("reason_upgraded_from"):
        earlier = REASONS.get(s["reason_upgraded_from"], s["reason_upgraded_from"])
        reason += f"（等待中由“{earlier}”升级）"
    add("转人工原因", reason)
    asked = _asked([str(i) for i in s.get("intents") or [] if i])
    last = str(s.get("last_message") or "")
    add("访客问题", "；".join(x for x in (asked, f"最后一句：“{last}”" if last else "") if x))
    order = slots.get("order_id")
    product = slots.get("product")
    add("订单", "".join(x for x in (str(order or ""), f"（{product}）" if product else "") if x))
    done = [tpl.format(**slots) for key, tpl in DONE if slots.get(key)]
    name = slots.get("name")
    if name:
        done.append(f"记下了称呼：{name}")
    add("机器人已处理", "；".join(done) or "还没有办理任何事项")
    add("情绪", _tone(s))
    for e in (s.get("evidence") or [])[-2:]:
        add("依据", f"{REASONS.get(str(e.get('reason')), e.get('reason'))}：“{e.get('sentence')}”")
    callback = s.get("callback") or {}
    if callback:
        parts = [CALLBACK_STAGES.get(str(callback.get("stage")), "")]
        if callback.get("phone"):
            parts.append(f"电话{callback['phone']}")
        if callback.get("when"):
            parts.append(f"时间：{callback['when']}")
        add("回电", "，".join(p for p in parts if p))
    transfer = s.get("transfer") or {}
    if transfer:
        note = f"，备注：{transfer['note']}" if transfer.get("note") else ""
        add("转接", f"由{transfer.get('from')}转来{note}")
    return lines
