"""A small front for `make run-scaled`: spreads visitors across desk replicas.

A conversation's requests and websocket stick to one replica (a hash of its id), new
chats and agent calls are spread round-robin, and a replica that refuses the
connection is skipped. Every replica can serve any conversation (PostgreSQL holds the
state, Redis fans events out), so stickiness only keeps one visitor's traffic together.
"""

from __future__ import annotations

import argparse
import asyncio
import zlib
from typing import AsyncIterator, List, Optional

import aiohttp
from aiohttp import WSMsgType, web

BACKENDS = web.AppKey("backends", list)
SESSION = web.AppKey("session", aiohttp.ClientSession)
ROUND = web.AppKey("round", list)  # [next backend index]
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-authenticate",
}
TIMEOUT = aiohttp.ClientTimeout(total=30)


def order_for(request: web.Request) -> List[str]:
    backends: List[str] = request.app[BACKENDS]
    key = request.match_info.get("conversation_id")
    if key is None:
        parts = request.path.split("/")
        key = parts[4] if len(parts) > 4 and parts[3] == "conversations" else None
    if key:
        first = zlib.crc32(key.encode()) % len(backends)
    else:
        counter = request.app[ROUND]
        first = counter[0] = (counter[0] + 1) % len(backends)
    return backends[first:] + backends[:first]


def forwarded_for(request: web.Request) -> str:
    """X-Forwarded-For with this hop's client appended, as proxies do (nginx's
    $proxy_add_x_forwarded_for); the desks believe it only from a trusted proxy."""
    prior = request.headers.get("X-Forwarded-For", "").strip()
    remote = request.remote or ""
    return f"{prior}, {remote}" if prior else remote


async def proxy(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await relay_websocket(request)
    body = await request.read()
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    headers["X-Forwarded-For"] = forwarded_for(request)
    for backend in order_for(request):
        try:
            async with request.app[SESSION].request(
                request.method,
                backend + request.path_qs,
                data=body,
                headers=headers,
                timeout=TIMEOUT,
                allow_redirects=False,
            ) as upstream:
                payload = await upstream.read()
                out = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
                return web.Response(body=payload, status=upstream.status, headers=out)
        except aiohttp.ClientConnectorError:
            continue  # that replica is down: the next one can serve the same conversation
        except (aiohttp.ClientError, asyncio.TimeoutError):
            break
    return web.json_response(
        {"error": "unavailable", "message": "服务暂时繁忙，请您稍后再试。"}, status=503
    )


async def relay_websocket(request: web.Request) -> web.StreamResponse:
    headers = {
        k: v
        for k, v in request.headers.items()
        if k.lower() in ("origin", "authorization", "cookie")
    }
    headers["X-Forwarded-For"] = forwarded_for(request)
    upstream: Optional[aiohttp.ClientWebSocketResponse] = None
    for backend in order_for(request):
        try:
            upstream = await request.app[SESSION].ws_connect(
                backend.replace("http", "ws", 1) + request.path_qs, headers=headers, heartbeat=30
            )
            break
        except aiohttp.WSServerHandshakeError as e:
            return web.json_response({"error": "refused"}, status=e.status)
        except aiohttp.ClientConnectorError:
            continue
    if upstream is None:
        return web.json_response({"error": "unavailable"}, status=503)
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)

    async def pump(source, sink) -> None:  # type: ignore[no-untyped-def]
        async for message in source:
            if message.type == WSMsgType.TEXT:
                await sink.send_str(message.data)
            elif message.type == WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            else:
                break

    tasks = [asyncio.create_task(pump(upstream, ws)), asyncio.create_task(pump(ws, upstream))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await upstream.close()
        await ws.close()  # the page reconnects and replays from its last sequence number
    return ws


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "backends": len(request.app[BACKENDS])})


async def session_ctx(app: web.Application) -> AsyncIterator[None]:
    app[SESSION] = aiohttp.ClientSession(auto_decompress=False)
    yield
    await app[SESSION].close()


def init_app(backends: List[str]) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app[BACKENDS] = [b.rstrip("/") for b in backends]
    app[ROUND] = [0]
    app.cleanup_ctx.append(session_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_route("*", "/{tail:.*}", proxy)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m kefu.stack.front")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("backends", nargs="+", help="desk replicas, e.g. http://127.0.0.1:8081")
    args = parser.parse_args()
    web.run_app(
        init_app(args.backends),
        host=args.host,
        port=args.port,
        access_log=None,
        print=lambda *_: print(f"kefu front on http://{args.host}:{args.port}", flush=True),
    )


if __name__ == "__main__":
    main()
