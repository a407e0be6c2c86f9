"""kefu behind proxies, for real: two desk replicas (PostgreSQL, Redis, the real Rasa of
`kefu run`) behind the run-scaled front and behind Debian's nginx with the repository's
deploy/nginx/kefu.conf. Visitors come from many loopback addresses (127.x.y.z are all
this machine's), so the proxies see many clients; the desks trust only the proxy."""

from __future__ import annotations

import asyncio
import json
import random
import re
import shutil
import signal
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import POSTGRES
from tests.processes import answers, free_port, port_open, start
from tests.stack.test_scaled import _schema

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
LIMIT = 10  # per minute, per address (and per conversation)
TIMEOUT = aiohttp.ClientTimeout(total=60)


@pytest.fixture(scope="module")
def replicas(stack, tmp_path_factory):
    """Two desks sharing PostgreSQL and Redis, and the run-scaled front before them."""
    work = tmp_path_factory.mktemp("proxied")
    schema = f"kefu_proxy_{uuid.uuid4().hex[:10]}"
    _schema(f"CREATE SCHEMA {schema}")
    ports = [free_port(), free_port()]
    env = {
        "KEFU_RASA_URL": stack.rasa,
        "KEFU_RASA_TOKEN": stack.token,
        "KEFU_ACTION_SERVER_URL": stack.actions,
        "KEFU_DATABASE_URL": f"{POSTGRES}?search_path={schema}",
        "KEFU_REDIS_URL": "redis://127.0.0.1:6379/0",
        "KEFU_TRUSTED_PROXIES": "127.0.0.1",
        "KEFU_RATE_PER_MINUTE": str(LIMIT),
    }
    started = []
    try:
        for i, port in enumerate(ports):
            argv = [sys.executable, "-m", "kefu.desk", "--port", str(port)]
            url = f"http://127.0.0.1:{port}"
            started.append(
                start(f"desk {i}", argv, work / f"desk-{i}.log", answers(url + "/readyz"), env)
            )
        front = free_port()
        argv = [sys.executable, "-m", "kefu.stack.front", "--port", str(front)]
        argv += [f"http://127.0.0.1:{p}" for p in ports]
        url = f"http://127.0.0.1:{front}"
        started.append(start("front", argv, work / "front.log", answers(url + "/healthz")))
        yield {"desks": ports, "front": url, "work": work}
    finally:
        for process in reversed(started):
            assert process.stop(signal.SIGINT, 30) == 0, process.output()[-2000:]
        _schema(f"DROP SCHEMA {schema} CASCADE")


def addresses(n: int) -> list:
    """n loopback addresses no other run uses now (rate windows live in Redis for 60 s)."""
    rng = random.SystemRandom()
    prefix = f"127.{rng.randrange(2, 250)}.{rng.randrange(0, 250)}."
    return [prefix + str(10 + i) for i in range(n)]


def from_address(address: str) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(local_addr=(address, 0), force_close=True)
    return aiohttp.ClientSession(connector=connector, timeout=TIMEOUT)


async def open_chat(session, base):
    async with session.post(f"{base}/api/visitor/conversations", json={}) as response:
        return response.status, await response.json()


async def say(session, base, cid, token, text):
    async with session.post(
        f"{base}/api/visitor/conversations/{cid}/messages",
        json={"text": text},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        return response.status, await response.json()


async def over_the_limit(base: str, address: str) -> list:
    """One address opening chats faster than the limit: the statuses, in order."""
    statuses = []
    async with from_address(address) as session:
        for _ in range(LIMIT + 2):
            statuses.append((await open_chat(session, base))[0])
    return statuses


async def test_fifty_visitors_behind_the_front_are_not_limited_by_each_other(replicas):
    base = replicas["front"]
    gate = asyncio.Semaphore(10)

    async def visitor(address: str):
        async with gate, from_address(address) as session:
            opened, body = await open_chat(session, base)
            assert opened == 201, body
            said, reply = await say(session, base, body["conversation_id"], body["token"], "你好")
            return opened, said, reply

    results = await asyncio.gather(*(visitor(a) for a in addresses(50)))
    assert [(o, s) for o, s, _ in results] == [(201, 200)] * 50
    assert all(reply["replies"] for _, _, reply in results)

    # One address over the limit is refused, though the front spreads its requests over
    # both desks: they count together, through Redis.
    [one, other] = addresses(2)
    statuses = await over_the_limit(base, one)
    assert statuses == [201] * LIMIT + [429, 429], statuses
    async with from_address(other) as session:
        assert (await open_chat(session, base))[0] == 201  # nobody else pays for it


NGINX_MAIN = """daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/kefu.conf;
}}
"""


@pytest.fixture(scope="module")
def nginx(replicas):
    """Debian's nginx with deploy/nginx/kefu.conf, on a free port with its own prefix."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        pytest.fail("Debian's nginx is missing: run `make setup` (apt-get install nginx-light)")
    prefix = replicas["work"] / "nginx"
    prefix.mkdir()
    port = free_port()
    conf = (ROOT / "deploy" / "nginx" / "kefu.conf").read_text(encoding="utf-8")
    conf, listens = re.subn(r"listen 80;", f"listen 127.0.0.1:{port};", conf)
    servers = "".join(f"    server 127.0.0.1:{p};\n" for p in replicas["desks"])
    conf, upstreams = re.subn(
        r"(upstream kefu_desks \{\n)(?:.*\n)*?(    keepalive)",
        lambda m: m.group(1) + servers + m.group(2),
        conf,
    )
    assert (listens, upstreams) == (1, 1), "deploy/nginx/kefu.conf changed shape"
    (prefix / "kefu.conf").write_text(conf, encoding="utf-8")
    (prefix / "nginx.conf").write_text(NGINX_MAIN.format(prefix=prefix), encoding="utf-8")
    argv = [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
    check = start("nginx -t", [*argv, "-t"], prefix / "check.log", lambda s: s.process.poll() == 0)
    assert "test is successful" in check.output()
    url = f"http://127.0.0.1:{port}"
    process = start("nginx", argv, prefix / "nginx.log", answers(url + "/healthz"))
    yield url
    assert process.stop(signal.SIGQUIT, 30) == 0, process.output()[-2000:]
    assert not port_open(port)


async def test_nginx_in_front_of_the_desks_with_websockets(nginx):
    [visitor, hasty] = addresses(2)
    async with from_address(visitor) as session:
        async with session.get(f"{nginx}/readyz") as response:
            assert response.status == 200 and (await response.json())["status"] == "ready"
        status, body = await open_chat(session, nginx)
        assert status == 201
        cid, token = body["conversation_id"], body["token"]
        ws_url = nginx.replace("http", "ws") + (
            f"/api/visitor/conversations/{cid}/ws?token={token}&after=0"
        )
        async with session.ws_connect(ws_url, headers={"Origin": nginx}) as ws:
            replayed = [json.loads((await ws.receive(timeout=15)).data) for _ in range(2)]
            assert replayed[0]["seq"] == 1 and replayed[-1]["type"] == "replayed"
            said, reply = await say(session, nginx, cid, token, "帮我查一下订单2023112500123456")
            assert said == 200
            live = []
            while len([e for e in live if e.get("type") == "message"]) < 2:
                live.append(json.loads((await ws.receive(timeout=30)).data))
            messages = [e for e in live if e.get("type") == "message"]
            assert messages[0]["sender"] == "visitor" and messages[1]["sender"] == "bot"
            await ws.send_str("ping")
            while json.loads((await ws.receive(timeout=15)).data)["type"] != "pong":
                pass
        # A page from another site may not open the live feed through the proxy either.
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(ws_url, headers={"Origin": "https://evil.example"})
        assert refused.value.status == 403

    # Behind nginx, each visitor has their own limit: one over it is refused, alone.
    assert await over_the_limit(nginx, hasty) == [201] * LIMIT + [429, 429]
    async with from_address(visitor) as session:
        assert (await say(session, nginx, cid, token, "你好"))[0] == 200
