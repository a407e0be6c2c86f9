"""The store briefly unavailable, for real: a TCP gate in front of PostgreSQL is closed
(its port shut, its connections cut) and opened again."""

from __future__ import annotations

import asyncio
import socket
import uuid
from typing import List, Optional

import pytest

from kefu.store import StoreError
from kefu.store.conversations import open_conversation_store

PG_PORT = 5432


class Gate:
    """127.0.0.1:<port> → 127.0.0.1:5432, which can be shut and reopened on the same port."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.server: Optional[asyncio.AbstractServer] = None
        self.links: List[asyncio.StreamWriter] = []

    async def open(self) -> None:
        self.server = await asyncio.start_server(
            self._link, "127.0.0.1", self.port, reuse_address=True
        )

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", PG_PORT)
        self.links += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def shut(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        for link in self.links:
            link.transport.abort()
        self.links.clear()


@pytest.fixture
async def gated(pg_url):
    gate = Gate()
    await gate.open()
    store = open_conversation_store(pg_url.replace(f":{PG_PORT}/", f":{gate.port}/"))
    yield gate, store
    await store.close()
    if gate.server is not None and gate.server.is_serving():
        await gate.shut()


async def test_a_brief_outage_is_retried_and_nothing_is_lost_or_doubled(gated):
    gate, store = gated
    c = await store.create_conversation(uuid.uuid4().hex, "h")
    sent = ["一", "二", "三"]
    for text in sent:
        await store.add_message(c.id, "visitor", text)

    await gate.shut()  # PostgreSQL is gone: the port is shut, live connections cut

    async def reopen_later() -> None:
        await asyncio.sleep(1.5)
        await gate.open()

    during = ["四", "五", "六", "七"]
    results = await asyncio.gather(
        reopen_later(), *(store.add_message(c.id, "visitor", t) for t in during)
    )
    sent += during
    assert sorted(m.seq for m in results[1:]) == [4, 5, 6, 7]
    stored = await store.messages(c.id)
    assert [m.seq for m in stored] == list(range(1, 8))
    assert sorted(m.text for m in stored) == sorted(sent) and len(stored) == len(sent)


async def test_a_long_outage_is_a_clear_error_and_the_message_is_not_half_kept(gated):
    gate, store = gated
    c = await store.create_conversation(uuid.uuid4().hex, "h")
    await gate.shut()
    with pytest.raises(StoreError, match="unavailable"):
        await store.add_message(c.id, "visitor", "丢了吗")  # the desk answers 503: resend
    await gate.open()
    await store.add_message(c.id, "visitor", "重发")
    assert [m.text for m in await store.messages(c.id)] == ["重发"]
