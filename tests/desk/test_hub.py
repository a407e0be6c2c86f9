"""The hub's fan-out: off the publisher's path, concurrent, in order, slow pages cut off."""

from __future__ import annotations

import asyncio
import json

import pytest

from kefu.desk import hub as hub_module
from kefu.desk.hub import Hub


class Page:
    """A websocket as the hub uses it; `stuck` makes every send hang (a page that stopped
    reading behind a full TCP window)."""

    def __init__(self, stuck: bool = False) -> None:
        self.stuck = stuck
        self.received: list = []
        self.closed = False
        self.close_code = None

    async def send_str(self, data: str) -> None:
        if self.stuck:
            await asyncio.Event().wait()
        self.received.append(json.loads(data))

    async def close(self, code: int = 1000, message: bytes = b"") -> None:
        self.closed, self.close_code = True, code


async def until(condition, timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def writers() -> list:
    return [t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "Subscriber._write"]


async def test_publishing_queues_and_returns_while_a_page_is_stuck(monkeypatch):
    monkeypatch.setattr(hub_module, "SEND_TIMEOUT_S", 0.2)
    hub = Hub()
    stuck, visitor, agent = Page(stuck=True), Page(), Page()
    hub.subscribe(stuck, "c1")
    hub.subscribe(visitor, "c1")
    hub.subscribe(agent, None)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for n in range(50):
        await hub.publish("c1", {"type": "message", "seq": n})
    assert loop.time() - started < 0.05  # nothing awaited a socket
    await until(lambda: len(visitor.received) == 50 and len(agent.received) == 50)
    assert [e["seq"] for e in visitor.received] == list(range(50))  # in order
    assert [e["seq"] for e in agent.received] == list(range(50))
    await asyncio.sleep(0.4)
    assert stuck.closed and stuck.close_code == 1013  # cut off; it reconnects and replays
    await hub.close()


async def test_other_conversations_are_not_told_and_a_full_outbox_closes_the_page(monkeypatch):
    monkeypatch.setattr(hub_module, "OUTBOX_LIMIT", 3)
    hub = Hub()
    slow, other = Page(stuck=True), Page()
    hub.subscribe(slow, "c1")
    hub.subscribe(other, "c2")
    for n in range(6):
        hub.deliver("c1", {"type": "message", "seq": n})
    await until(lambda: slow.closed)
    assert other.received == []
    await hub.close()


async def test_unsubscribe_and_close_end_every_writer():
    hub = Hub()
    page = Page()
    subscriber = hub.subscribe(page, "c1")
    hub.deliver("c1", {"type": "typing"})
    await hub.unsubscribe(subscriber)
    assert page.received == [{"conversation_id": "c1", "type": "typing"}]
    assert "c1" not in hub.visitors
    hub.subscribe(Page(), None)
    await hub.close()
    assert writers() == []


@pytest.mark.parametrize("pages", [200])
async def test_fan_out_to_many_pages_is_concurrent(pages, monkeypatch):
    """One slow send does not delay the others: each page has its own writer."""

    class SlowPage(Page):
        async def send_str(self, data: str) -> None:
            await asyncio.sleep(0.05)
            await super().send_str(data)

    hub = Hub()
    many = [SlowPage() for _ in range(pages)]
    for page in many:
        hub.subscribe(page, None)
    loop = asyncio.get_running_loop()
    started = loop.time()
    hub.deliver("c1", {"type": "typing"})
    await until(lambda: all(page.received for page in many))
    assert loop.time() - started < 1.0  # 200 x 50 ms one after another would be 10 s
    await hub.close()
