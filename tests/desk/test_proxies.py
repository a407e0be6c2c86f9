"""The client's address behind proxies, and /readyz naming what is not ready."""

from __future__ import annotations

import asyncio

import pytest

from kefu.desk.app import init_app
from kefu.desk.config import ConfigError, DeskConfig
from kefu.desk.proxies import ClientAddress
from tests.processes import free_port


def test_forwarded_for_is_believed_only_from_a_trusted_proxy():
    addresses = ClientAddress(["127.0.0.1", "10.0.0.0/8", "::1"])
    assert addresses.of("127.0.0.1", "203.0.113.7") == "203.0.113.7"
    # Appended by several trusted hops: the rightmost untrusted entry is the client.
    assert addresses.of("127.0.0.1", "198.51.100.1, 203.0.113.7, 10.1.2.3") == "203.0.113.7"
    # A visitor's own forged entry to the left changes nothing.
    assert addresses.of("127.0.0.1", "1.2.3.4, 203.0.113.7") == "203.0.113.7"
    # Not from a trusted proxy: the header is the visitor's own claim, ignored.
    assert addresses.of("203.0.113.9", "1.2.3.4") == "203.0.113.9"
    assert addresses.of("127.0.0.1", None) == "127.0.0.1"
    assert addresses.of("127.0.0.1", "garbage, 203.0.113.7") == "203.0.113.7"
    assert addresses.of("127.0.0.1", "203.0.113.7, garbage") == "127.0.0.1"
    assert addresses.of("::1", "[2001:db8::5]:4711") == "2001:db8::5"
    assert addresses.of("127.0.0.1", "203.0.113.7:5555") == "203.0.113.7"
    assert addresses.of("::ffff:127.0.0.1", "203.0.113.8") == "203.0.113.8"
    assert addresses.of("127.0.0.1", "10.0.0.5, 10.0.0.6") == "10.0.0.5"  # all trusted
    assert ClientAddress([]).of("127.0.0.1", "203.0.113.7") == "127.0.0.1"


def test_bad_trusted_proxies_refuse_to_start():
    assert DeskConfig.from_env({"KEFU_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8"}).trusted_proxies
    with pytest.raises(ConfigError, match="KEFU_TRUSTED_PROXIES"):
        DeskConfig.from_env({"KEFU_TRUSTED_PROXIES": "127.0.0.1,not-an-address"})


@pytest.fixture
def unready(aiohttp_client, tmp_path, policy):
    async def make(**settings):
        closed = f"http://127.0.0.1:{free_port()}"
        values = {
            "rasa_url": closed,
            "action_server_url": closed,
            "database_url": f"sqlite:///{tmp_path / 'desk.db'}",
            **settings,
        }
        return await aiohttp_client(init_app(DeskConfig(**values), policy, timers=False))

    return make


async def test_readyz_names_what_is_not_ready_and_healthz_stays_alive(unready):
    client = await unready()
    response = await client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "not_ready" and body["not_ready"] == ["rasa", "action_server"]
    assert "unreachable" in body["components"]["rasa"]
    assert body["components"]["store"] == "ready"
    assert (await client.get("/healthz")).status == 200


async def test_readyz_names_the_store_when_it_goes_away(unready, stack, pg_url):
    from tests.store.test_outage import PG_PORT, Gate

    gate = Gate()
    await gate.open()
    client = await unready(
        rasa_url=stack.rasa,
        rasa_token=stack.token,
        action_server_url=stack.actions,
        database_url=pg_url.replace(f":{PG_PORT}/", f":{gate.port}/"),
    )
    assert (await client.get("/readyz")).status == 200
    await gate.shut()
    await asyncio.sleep(1.1)  # past the cached answer
    response = await client.get("/readyz")
    body = await response.json()
    assert response.status == 503 and body["not_ready"] == ["store"], body
    assert (await client.get("/healthz")).status == 200  # alive all the same
    await gate.open()
    await asyncio.sleep(1.1)
    assert (await client.get("/readyz")).status == 200
    await gate.shut()


@pytest.mark.slow
async def test_readyz_is_ready_only_with_everything_up(unready, stack):
    client = await unready(
        rasa_url=stack.rasa, rasa_token=stack.token, action_server_url=stack.actions
    )
    response = await client.get("/readyz")
    body = await response.json()
    assert response.status == 200 and body["status"] == "ready", body
    wrong_token = await unready(
        rasa_url=stack.rasa, rasa_token="not-the-token", action_server_url=stack.actions
    )
    body = await (await wrong_token.get("/readyz")).json()
    assert body["not_ready"] == ["rasa"] and "401" in body["components"]["rasa"]
