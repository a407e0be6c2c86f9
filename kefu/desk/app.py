"""The desk's aiohttp application: `init_app()` builds it, `main()` serves it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import AsyncIterator, Awaitable, Callable, Optional

import aiohttp
from aiohttp import web

from kefu.desk.channels import build_channels
from kefu.desk.config import DEFAULT_AGENT, ConfigError, DeskConfig
from kefu.desk.handlers import not_allowed
from kefu.desk.hub import Hub
from kefu.desk.inputs import BadInput, RateLimiter, error
from kefu.desk.keys import CHANNELS, CONFIG, DESK, LIMITER, READINESS
from kefu.desk.rasa_client import ActionServerProbe, RasaClient
from kefu.desk.readiness import Readiness
from kefu.desk.routes import setup_routes
from kefu.desk.service import Desk, NotAllowed
from kefu.domain.policy import PolicyError, load_policy
from kefu.domain.policy.loader import Policy
from kefu.stack.logs import install_masking
from kefu.store import RecordStore, StoreError, open_database
from kefu.store.channels import ChannelStore
from kefu.store.conversations import ConversationStore

logger = logging.getLogger("kefu.desk")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Pages load only their own scripts and styles, and talk only to this origin.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@web.middleware
async def errors_and_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except BadInput as e:
        response = e.response()
    except NotAllowed as e:
        response = not_allowed(e)
    except StoreError as e:
        logger.error("store unavailable: %s", e)
        response = error(503, "store_unavailable", "服务暂时繁忙，请您稍后再试。")
    except web.HTTPException as e:
        if e.status == 413:
            response = error(413, "body_too_large", "请求内容过大。")
        elif e.status in (404, 405):
            response = error(
                e.status,
                "not_found" if e.status == 404 else "method_not_allowed",
                "没有这个地址。" if e.status == 404 else "不支持这个请求方法。",
            )
        else:
            raise
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        response = error(500, "internal", "服务暂时出现问题，请您稍后再试。")
    if not response.prepared:
        if "Content-Security-Policy" not in response.headers:  # else the page framed by
            response.headers["Content-Security-Policy"] = CSP  # allowed shops sets its own
            response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def desk_ctx(policy: Policy, redis_url: Optional[str]):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        config = app[CONFIG]
        session = aiohttp.ClientSession()
        db = open_database(config.database_url)  # one pool for both stores
        store, records = ConversationStore(db), RecordStore(db)
        hub = Hub()
        if redis_url:
            await hub.start_redis(redis_url)
        desk = Desk(
            config,
            policy,
            store,
            records,
            RasaClient(session, config.rasa_url, config.rasa_token, config.rasa_timeout_s),
            hub,
            ActionServerProbe(session, config.action_server_url),
        )
        await desk.accounts.ensure()
        channels = build_channels(desk, ChannelStore(db), session)
        app[CHANNELS] = channels
        app[READINESS] = Readiness(session, config, db)
        if redis_url:
            app[LIMITER].use_redis(redis_url)
        # jieba and the tone model load in a thread, not on the loop (about 2 s).
        await asyncio.get_running_loop().run_in_executor(None, desk.checker.warm)
        if any(name == DEFAULT_AGENT[0] for name, _ in config.agents):
            logger.warning(
                "demo agent account demo / demo is enabled (set KEFU_AGENTS to replace it)"
            )
        app[DESK] = desk
        await channels.start()
        yield
        await channels.close()
        await app[LIMITER].close()
        await hub.close()
        await session.close()
        await store.close()
        await records.close()

    return ctx


async def ticker_ctx(app: web.Application) -> AsyncIterator[None]:
    """Idle timers, retention, first-response timers and assignment, checked every few
    seconds off the request path."""

    async def loop() -> None:
        while True:
            try:
                await app[DESK].tick()
                await app[CHANNELS].tick()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a store hiccup: try again next tick
                logger.warning("desk tick failed: %s", e)
            await asyncio.sleep(app[CONFIG].tick_s)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


async def close_websockets(app: web.Application) -> None:
    if DESK in app:
        await app[DESK].hub.close()


def init_app(
    config: Optional[DeskConfig] = None,
    policy: Optional[Policy] = None,
    redis_url: Optional[str] = None,
    timers: bool = True,
) -> web.Application:
    config = config or DeskConfig.from_env()
    app = web.Application(client_max_size=config.max_body, middlewares=[errors_and_headers])
    app[CONFIG] = config
    app[LIMITER] = RateLimiter(config.rate_per_minute)
    app.cleanup_ctx.append(desk_ctx(policy or load_policy(), redis_url))
    if timers:
        app.cleanup_ctx.append(ticker_ctx)
    app.on_shutdown.append(close_websockets)  # type: ignore[arg-type]  # aiohttp 3.9 stubs
    setup_routes(app)
    return app


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kefu.desk")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    install_masking()
    try:
        config = DeskConfig.from_env()
        app = init_app(config, load_policy(), os.environ.get("KEFU_REDIS_URL") or None)
    except (ConfigError, PolicyError, StoreError) as e:
        print(f"kefu desk: {e}", file=sys.stderr)
        return 2
    host, port = args.host or config.host, args.port or config.port
    web.run_app(
        app,
        host=host,
        port=port,
        access_log=None,
        print=lambda *_: print(f"kefu desk on http://{host}:{port}", flush=True),
    )
    return 0
