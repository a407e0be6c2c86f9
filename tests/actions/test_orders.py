"""Order lookups over real HTTP: demo backend, client, form validation, lookup action."""

from __future__ import annotations

import socket

import pytest

from actions import config
from actions.api.orders import OrderClient, OrderLookupError, OrderNotFound
from actions.orders import ActionAskOrderId, ActionLookupOrder, ValidateOrderForm, find_order_id
from kefu.stack.demo_orders import init_app


@pytest.fixture
async def backend(aiohttp_server, tmp_path):
    return await aiohttp_server(init_app(tmp_path / "orders.db"))


@pytest.fixture
async def slow_backend(aiohttp_server, tmp_path):
    return await aiohttp_server(init_app(tmp_path / "slow.db", delay_s=2.0))


def base_url(server) -> str:
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
def use_backend(monkeypatch):
    def point_at(url: str, timeout_s: float = 5) -> None:
        monkeypatch.setenv("KEFU_ORDER_BACKEND_URL", url)
        monkeypatch.setenv("KEFU_ORDER_TIMEOUT_S", str(timeout_s))
        config.order_backend.cache_clear()

    yield point_at
    config.order_backend.cache_clear()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the demo backend ------------------------------------------------------------


async def test_demo_backend_serves_seeded_orders(aiohttp_client, tmp_path):
    client = await aiohttp_client(init_app(tmp_path / "orders.db"))
    response = await client.get("/orders/jd20231118001")  # ids are case-insensitive
    assert response.status == 200
    order = await response.json()
    assert order["order_id"] == "JD20231118001" and order["status_text"] == "已签收"
    missing = await client.get("/orders/9999999999")
    assert missing.status == 404 and (await missing.json()) == {"error": "not_found"}
    assert (await (await client.get("/healthz")).json()) == {"status": "ok"}


# --- the client ----------------------------------------------------------------------


async def test_client_reads_an_order(backend):
    order = await OrderClient(base_url(backend), 5).get("2023112500123456")
    assert order.status == "in_transit" and order.carrier == "顺丰速运"


async def test_client_not_found(backend):
    with pytest.raises(OrderNotFound):
        await OrderClient(base_url(backend), 5).get("1111111111")


async def test_client_gives_up_at_its_deadline(slow_backend):
    with pytest.raises(OrderLookupError):
        await OrderClient(base_url(slow_backend), 0.3).get("2023112500123456")


async def test_client_reports_a_backend_that_is_down():
    with pytest.raises(OrderLookupError):
        await OrderClient(f"http://127.0.0.1:{closed_port()}", 2).get("2023112500123456")


# --- the form's validation -----------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2023112500123456", "2023112500123456"),
        ("订单号是 jd20231118001 谢谢", "JD20231118001"),
        ("13800138000", "13800138000"),  # 11 digits: a valid order id format too
        ("12345", None),
        ("我找不到", None),
    ],
)
def test_find_order_id(text, expected):
    assert find_order_id(text) == expected


async def test_valid_id_is_kept(dispatcher, make_tracker, domain):
    result = await ValidateOrderForm().validate_order_id(
        "单号JD20231118001", dispatcher, make_tracker(), domain.as_dict()
    )
    assert result == {"order_id": "JD20231118001", "form_failures": 0.0}
    assert dispatcher.messages == []


async def test_invalid_id_is_asked_again_with_an_example_then_handed_over(
    dispatcher, make_tracker, domain
):
    form = ValidateOrderForm()
    first = await form.validate_order_id("12345", dispatcher, make_tracker(), domain.as_dict())
    assert first == {"order_id": None, "form_failures": 1.0}
    second = await form.validate_order_id(
        "abc", dispatcher, make_tracker(slots={"form_failures": 1.0}), domain.as_dict()
    )
    assert second == {"order_id": None, "form_failures": 2.0}
    # The second time nothing is said here: EscalationPolicy hands over (bot_failure).
    assert [m["response"] for m in dispatcher.messages] == ["phrase_order_id_invalid"]


async def test_form_asks_with_the_policy_phrase(dispatcher, make_tracker, domain):
    assert await ActionAskOrderId().run(dispatcher, make_tracker(), domain.as_dict()) == []
    assert dispatcher.messages[0]["response"] == "phrase_ask_order_id"


# --- the lookup --------------------------------------------------------------------------


async def test_lookup_answers_with_the_status_and_the_carriers_estimate(
    backend, use_backend, dispatcher, make_tracker, domain
):
    use_backend(base_url(backend))
    tracker = make_tracker(slots={"order_id": "2023112500123456"})
    events = await ActionLookupOrder().run(dispatcher, tracker, domain.as_dict())
    # No wait announced here: the desk says 请稍等 only when a reply really is slow.
    [status] = dispatcher.messages
    assert status["response"] == "phrase_order_status"
    assert status["status_text"] == "运输中" and "SF1234567890123" in status["detail"]
    assert "预计" in status["detail"] and "送达" in status["detail"]
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["lookup_failed"] is False and slots["order_status"] == "运输中"
    assert slots["order_eta"].startswith("预计")


async def test_lookup_of_an_unknown_order_asks_to_check_it(
    backend, use_backend, dispatcher, make_tracker, domain
):
    use_backend(base_url(backend))
    events = await ActionLookupOrder().run(
        dispatcher, make_tracker(slots={"order_id": "9999999999"}), domain.as_dict()
    )
    assert dispatcher.messages[-1]["response"] == "phrase_order_not_found"
    assert events[0]["name"] == "order_id" and events[0]["value"] is None


@pytest.mark.parametrize("slow", [True, False])
async def test_lookup_that_fails_apologises_and_offers_a_call_back(
    slow, slow_backend, use_backend, dispatcher, make_tracker, domain
):
    if slow:
        use_backend(base_url(slow_backend), timeout_s=0.3)
    else:
        use_backend(f"http://127.0.0.1:{closed_port()}")
    events = await ActionLookupOrder().run(
        dispatcher, make_tracker(slots={"order_id": "2023112500123456"}), domain.as_dict()
    )
    assert [m["response"] for m in dispatcher.messages] == ["phrase_lookup_failed"]
    assert events[0]["name"] == "lookup_failed" and events[0]["value"] is True


async def test_lookup_without_an_id_asks_for_it(dispatcher, make_tracker, domain):
    assert await ActionLookupOrder().run(dispatcher, make_tracker(), domain.as_dict()) == []
    assert dispatcher.messages[0]["response"] == "phrase_ask_order_id"
