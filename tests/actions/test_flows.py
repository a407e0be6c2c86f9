"""The hand-over, complaint, return and chasing actions, with real SDK trackers."""

from __future__ import annotations

from datetime import date

import pytest

from actions import config, records
from actions.complaints import (
    ActionComplaintReadback,
    ActionRecordComplaint,
    ValidateComplaintForm,
    name_from_answer,
)
from actions.handoff import ActionHandoff
from actions.orders import ActionAskOrderId, check_order_id
from actions.returns import ActionCheckReturn, ValidateReturnForm
from actions.waiting import ActionUrge
from kefu.domain import returns
from kefu.stack.demo_orders import init_app


@pytest.fixture
async def store(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_DATABASE_URL", f"sqlite:///{tmp_path / 'kefu.db'}")
    records.store.cache_clear()
    yield records.store()
    await records.store().close()
    records.store.cache_clear()


@pytest.fixture
async def orders(aiohttp_server, tmp_path, monkeypatch):
    server = await aiohttp_server(init_app(tmp_path / "orders.db"))
    monkeypatch.setenv("KEFU_ORDER_BACKEND_URL", str(server.make_url("")).rstrip("/"))
    config.order_backend.cache_clear()
    yield server
    config.order_backend.cache_clear()


def user(intent: str, text: str = "", score: float = 0.0) -> dict:
    return {
        "event": "user",
        "text": text,
        "parse_data": {"intent": {"name": intent}, "tone": {"score": score, "labels": []}},
    }


def with_loop(tracker, name: str):
    tracker.active_loop = {"name": name}
    return tracker


async def test_handoff_tells_the_visitor_and_the_desk_and_ends_the_form(
    dispatcher, make_tracker, domain
):
    tracker = with_loop(
        make_tracker(
            slots={"order_id": "2023112500123456", "requested_slot": "order_id"},
            events=[user("query_order", "查订单"), user("ask_human", "转人工")],
            text="转人工",
            intent="ask_human",
        ),
        "order_form",
    )
    events = await ActionHandoff().run(dispatcher, tracker, domain.as_dict())
    assert dispatcher.messages[0]["response"] == "phrase_handoff_request"
    signal = dispatcher.messages[1]["custom"]["kefu"]
    assert signal["event"] == "handoff" and signal["reason"] == "customer_request"
    assert signal["intents"] == ["query_order", "ask_human"]
    assert signal["slots"] == {"order_id": "2023112500123456"}
    assert signal["last_message"] == "转人工"
    names = {(e["event"], e.get("name")): e.get("value") for e in events}
    assert names[("slot", "handoff_reason")] == "customer_request"
    assert ("active_loop", None) in names  # the order form is closed


async def test_handoff_takes_a_supervisor_request_at_once(dispatcher, make_tracker, domain):
    # retain_first is off in policy/escalation.yml: no attempt to keep the chat first.
    tracker = make_tracker(events=[user("ask_supervisor")], intent="ask_supervisor")
    events = await ActionHandoff().run(dispatcher, tracker, domain.as_dict())
    assert dispatcher.messages[0]["response"] == "phrase_handoff_supervisor"
    assert dispatcher.messages[1]["custom"]["kefu"]["reason"] == "supervisor"
    names = {(e["event"], e.get("name")): e.get("value") for e in events}
    assert names[("slot", "handoff_reason")] == "supervisor"


async def test_handoff_names_anger_with_its_tone_trend(dispatcher, make_tracker, domain):
    tracker = make_tracker(
        events=[user("urge", score=0.8), user("complain", score=1.0)], intent="complain"
    )
    await ActionHandoff().run(dispatcher, tracker, domain.as_dict())
    signal = dispatcher.messages[1]["custom"]["kefu"]
    assert signal["reason"] == "anger" and signal["priority"] == 70
    assert signal["tone_trend"] == [0.8, 1.48]


def test_names_from_answers():
    assert name_from_answer("我姓王", []) == "王"
    assert name_from_answer("王先生", []) == "王"
    assert name_from_answer("叫我小李就行", [{"entity": "name", "value": "李"}]) == "李"
    assert name_from_answer("不想说", []) is None
    assert name_from_answer("我的耳机坏了你们怎么处理", []) is None


async def test_complaint_form_asks_the_name_only_when_unknown(dispatcher, make_tracker, domain):
    form = ValidateComplaintForm()
    slots = ["name_answer", "complaint_what", "complaint_when", "order_id", "complaint_want"]
    unknown = await form.required_slots(slots, dispatcher, make_tracker(), domain.as_dict())
    known = await form.required_slots(
        slots, dispatcher, make_tracker(slots={"name": "王", "title": "女士"}), domain.as_dict()
    )
    # A surname alone: the name question stays, to ask 先生 or 女士 once.
    surname_only = await form.required_slots(
        slots, dispatcher, make_tracker(slots={"name": "王"}), domain.as_dict()
    )
    assert unknown == slots and known == slots[1:] and surname_only == slots
    declined = await form.validate_name_answer(
        "不方便说", dispatcher, make_tracker(), domain.as_dict()
    )
    assert declined == {"name_answer": "declined", "name": None}
    no_order = await form.validate_order_id(
        "没有订单号", dispatcher, make_tracker(), domain.as_dict()
    )
    assert no_order["order_id"] == "无"


async def test_complaint_is_read_back_then_recorded_with_a_follow_up(
    dispatcher, make_tracker, domain, store, policy
):
    slots = {
        "complaint_what": "耳机没有声音",
        "complaint_when": "昨天",
        "order_id": "2023112500123456",
        "complaint_want": "换新",
        "name": "王",
    }
    await ActionComplaintReadback().run(dispatcher, make_tracker(slots=slots), domain.as_dict())
    readback = dispatcher.messages[0]
    assert readback["response"] == "phrase_complaint_readback"
    # In the bot's words: the day as a date, what the visitor wants as the service's term.
    assert (readback["what"], readback["order"], readback["want"]) == (
        "耳机没有声音",
        "2023112500123456",
        "换货",
    )
    assert readback["when"].endswith("（昨天）")
    events = await ActionRecordComplaint().run(
        dispatcher,
        make_tracker(slots=slots, text="还有盒子也破了", intent="inform"),
        domain.as_dict(),
    )
    recorded = dispatcher.messages[1]
    assert recorded["response"] == "phrase_complaint_recorded"
    assert recorded["follow_up"] == str(policy.service.follow_up_hours)
    [ticket] = await store.find(kind="ticket")
    assert recorded["number"] == ticket.number and ticket.number.startswith("T")
    assert ticket.data["what"] == "耳机没有声音" and ticket.data["addendum"] == ["还有盒子也破了"]
    assert {"event": "slot", "timestamp": None, "name": "complaint_what", "value": None} in events


async def test_complaint_with_the_store_down_is_handed_over(
    dispatcher, make_tracker, domain, monkeypatch
):
    monkeypatch.setenv("KEFU_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/test")
    records.store.cache_clear()
    try:
        events = await ActionRecordComplaint().run(
            dispatcher,
            make_tracker(slots={"complaint_what": "坏了"}, intent="deny"),
            domain.as_dict(),
        )
    finally:
        records.store.cache_clear()
    assert dispatcher.messages[0]["response"] == "phrase_handoff_bot_failure"
    assert dispatcher.messages[1]["custom"]["kefu"]["reason"] == "bot_failure"
    assert {
        "event": "slot",
        "timestamp": None,
        "name": "handoff_reason",
        "value": "bot_failure",
    } in events


def test_return_eligibility_follows_the_policy(policy):
    service = policy.service
    today = date(2026, 11, 25)
    ok = returns.check(
        status="delivered",
        product="连衣裙",
        delivered_at="2026-11-20T10:00:00",
        service=service,
        today=today,
    )
    late = returns.check(
        status="delivered",
        product="电饭煲",
        delivered_at="2026-11-10T10:00:00",
        service=service,
        today=today,
    )
    custom = returns.check(
        status="delivered",
        product="定制刻字保温杯",
        delivered_at="2026-11-24T10:00:00",
        service=service,
        today=today,
    )
    undelivered = returns.check(
        status="in_transit", product="耳机", delivered_at=None, service=service, today=today
    )
    assert ok.eligible and undelivered.eligible
    assert not late.eligible and "15天" in late.why and "7天" in late.why
    assert not custom.eligible and custom.exception == "custom_made"


@pytest.mark.parametrize(
    "text, kind",
    [("我要退货", "退货"), ("换个大一码", "换货"), ("把钱退给我", "退款"), ("随便", None)],
)
def test_return_types_from_answers(text, kind):
    assert returns.return_type_of(text) == kind


async def test_return_reason_is_not_an_order_id(dispatcher, make_tracker, domain):
    form = ValidateReturnForm()
    assert (
        await form.validate_return_reason(
            "JD20231118001", dispatcher, make_tracker(), domain.as_dict()
        )
    ) == {"return_reason": None}
    assert (
        await form.validate_return_reason(
            "尺码不合适", dispatcher, make_tracker(), domain.as_dict()
        )
    ) == {"return_reason": "尺码不合适"}


async def test_eligible_return_is_created_with_a_number_and_next_steps(
    dispatcher, make_tracker, domain, store, orders
):
    slots = {"order_id": "JD20231118001", "return_type": "退货", "return_reason": "尺码不合适"}
    events = await ActionCheckReturn().run(dispatcher, make_tracker(slots=slots), domain.as_dict())
    # No wait announced by the action: the desk does that only when a reply is slow.
    [created] = dispatcher.messages
    assert created["response"] == "phrase_return_created"
    [request] = await store.find(kind="return")
    assert created["number"] == request.number and request.number.startswith("R")
    assert request.data == {
        "order_id": "JD20231118001",
        "type": "退货",
        "reason": "尺码不合适",
        "product": "连衣裙",
    }
    assert "3天内" in created["steps"]
    # Kept for the follow-ups (how to send it back, when the money arrives).
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["return_number"] == request.number and slots["return_kind"] == "退货"


async def test_ineligible_return_is_explained_with_alternatives(
    dispatcher, make_tracker, domain, store, orders
):
    for order_id, why in (("AB1234567890", "超过了7天"), ("JD20231120002", "定制类商品")):
        dispatcher.messages.clear()
        slots = {"order_id": order_id, "return_type": "退货", "return_reason": "不想要了"}
        await ActionCheckReturn().run(dispatcher, make_tracker(slots=slots), domain.as_dict())
        [refused] = dispatcher.messages
        assert refused["response"] == "phrase_return_not_eligible" and why in refused["why"]
    assert await store.find(kind="return") == []


async def test_order_id_is_asked_in_the_words_of_each_form(dispatcher, make_tracker, domain):
    for form, phrase in (
        ("order_form", "phrase_ask_order_id"),
        ("complaint_form", "phrase_ask_complaint_order"),
        ("return_form", "phrase_ask_return_order"),
    ):
        dispatcher.messages.clear()
        await ActionAskOrderId().run(dispatcher, with_loop(make_tracker(), form), domain.as_dict())
        assert dispatcher.messages[0]["response"] == phrase


async def test_after_a_rejected_id_the_plain_ask_stays_quiet(dispatcher, make_tracker, domain):
    tracker = with_loop(make_tracker(slots={"form_failures": 1.0}), "order_form")
    await ActionAskOrderId().run(dispatcher, tracker, domain.as_dict())
    assert dispatcher.messages == []


async def test_the_second_bad_order_id_says_nothing_the_hand_over_speaks(dispatcher, make_tracker):
    first = check_order_id("123", dispatcher, make_tracker())
    second = check_order_id("abc", dispatcher, make_tracker(slots={"form_failures": 1.0}))
    assert first["form_failures"] == 1 and second["form_failures"] == 2
    assert [m["response"] for m in dispatcher.messages] == ["phrase_order_id_invalid"]


async def test_urge_gives_a_reason_and_an_estimate(dispatcher, make_tracker, domain):
    in_form = with_loop(make_tracker(slots={"requested_slot": "order_id"}), "order_form")
    await ActionUrge().run(dispatcher, in_form, domain.as_dict())
    await ActionUrge().run(
        dispatcher, make_tracker(slots={"lookup_failed": True}), domain.as_dict()
    )
    await ActionUrge().run(dispatcher, make_tracker(), domain.as_dict())
    assert [m["response"] for m in dispatcher.messages] == [
        "phrase_urge_form",
        "phrase_urge_lookup_failed",
        "phrase_urge_nothing_pending",  # never "加紧处理" when nothing is being done
    ]
    assert dispatcher.messages[0]["needed"] == "订单号"


@pytest.mark.parametrize(
    "slots, phrase, values",
    [
        ({"ticket_number": "T1", "agent_promise": None}, "phrase_urge_ticket", {"number": "T1"}),
        (
            {"return_number": "R7", "return_kind": "换货"},
            "phrase_urge_return",
            {"number": "R7", "return_type": "换货"},
        ),
        (
            {
                "order_id": "2023112500123456",
                "order_status": "运输中",
                "order_eta": "预计12月3日送达。",
            },
            "phrase_urge_order",
            {"status_text": "运输中", "eta": "预计12月3日送达。"},
        ),
        (
            {"agent_promise": "今天下班前回复您"},
            "phrase_urge_agent_promise",
            {"promise": "今天下班前回复您"},
        ),
    ],
)
async def test_urge_after_a_finished_flow_says_what_was_done(
    dispatcher, make_tracker, domain, slots, phrase, values
):
    await ActionUrge().run(dispatcher, make_tracker(slots=slots), domain.as_dict())
    [message] = dispatcher.messages
    assert message["response"] == phrase
    assert {k: message[k] for k in values} == values


async def test_a_phone_after_a_failed_lookup_books_the_call_back(
    dispatcher, make_tracker, domain, store
):
    from actions.orders import ActionTakePhone

    slots = {"phone": "13800138000", "lookup_failed": True, "order_id": "2023112500123456"}
    events = await ActionTakePhone().run(dispatcher, make_tracker(slots=slots), domain.as_dict())
    booked = dispatcher.messages[0]
    assert (
        booked["response"] == "phrase_lookup_callback_booked" and booked["phone"] == "138****8000"
    )
    [callback] = await store.find(kind="callback")
    assert callback.number == booked["number"] and callback.number.startswith("C")
    assert callback.data["order_id"] == "2023112500123456"
    assert {"event": "slot", "timestamp": None, "name": "lookup_failed", "value": False} in events
    dispatcher.messages.clear()
    await ActionTakePhone().run(
        dispatcher, make_tracker(slots={"phone": "13800138000"}), domain.as_dict()
    )
    assert dispatcher.messages[0]["response"] == "utter_noted"


def faq_tracker(make_tracker, text: str, confidence: float, requested: str):
    tracker = with_loop(
        make_tracker(slots={"requested_slot": requested}, text=text, intent="faq"), "return_form"
    )
    tracker.latest_message["intent"]["confidence"] = confidence
    tracker.latest_message["response_selector"] = {
        "faq": {"response": {"utter_action": "utter_faq/size", "confidence": confidence}}
    }
    return tracker


@pytest.mark.parametrize(
    "text, confidence, requested, taken",
    [
        # a plain reason that only reads a little like a size question is the answer
        ("尺码不合适", 0.43, "return_reason", True),
        # a real question, even read with little confidence, is answered
        ("这个尺码偏大吗", 0.43, "return_reason", False),
        ("尺码怎么选", 0.43, "return_reason", False),
        # a confident shop question is answered
        ("尺码表在哪看", 0.9, "return_reason", False),
        ("尺码不合适", 0.9, "return_reason", False),
        # a slot that is not a description never takes it
        ("尺码不合适", 0.43, "order_id", False),
    ],
)
async def test_a_shop_question_in_a_form_is_answered_unless_it_is_the_description(
    dispatcher, make_tracker, domain, text, confidence, requested, taken
):
    from actions.flows import ActionFaqInForm

    tracker = faq_tracker(make_tracker, text, confidence, requested)
    events = await ActionFaqInForm().run(dispatcher, tracker, domain.as_dict())
    if taken:
        assert not dispatcher.messages
        assert {"event": "slot", "timestamp": None, "name": requested, "value": text} in events
        assert events[-1]["event"] == "followup" and events[-1]["name"] == "return_form"
    else:
        assert [m["response"] for m in dispatcher.messages] == ["utter_faq/size"]
        assert events == []


async def test_a_shop_question_with_no_topic_gets_the_default_answer(
    dispatcher, make_tracker, domain
):
    from actions.flows import ActionFaqInForm

    tracker = faq_tracker(make_tracker, "这个怎么弄", 0.9, "order_id")
    tracker.latest_message["response_selector"] = {}
    assert await ActionFaqInForm().run(dispatcher, tracker, domain.as_dict()) == []
    assert [m["response"] for m in dispatcher.messages] == ["utter_default"]
