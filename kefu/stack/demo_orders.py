"""A demo order backend: aiohttp over SQLite, seeded with sample orders.

It stands in for a shop's order system so `make run` works with nothing to
install. The assistant reaches it only through the HTTP interface configured in
endpoints.yml (`order_backend.url`), so a real backend replaces it by URL.

GET /orders/{order_id} -> 200 order JSON (with `estimated_delivery`, a date, while the
                          order is on its way) | 404 {"error": "not_found"}
GET /healthz           -> 200 {"status": "ok"}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Dict, List

import aiosqlite
from aiohttp import web

from kefu.paths import ROOT

DEFAULT_DB = ROOT / "var" / "demo-orders.db"
DB = web.AppKey("db", aiosqlite.Connection)
DELAY = web.AppKey("delay", float)

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    product TEXT NOT NULL,
    carrier TEXT,
    tracking_no TEXT,
    ordered_at TEXT NOT NULL,
    shipped_at TEXT,
    delivered_at TEXT
)
"""
# status: pending (待发货), shipped (已发货), in_transit (运输中), delivered (已签收)
STATUS_TEXT = {
    "pending": "待发货",
    "shipped": "已发货",
    "in_transit": "运输中",
    "delivered": "已签收",
}


def sample_orders(now: datetime) -> List[Dict[str, Any]]:
    def ago(days: float) -> str:
        return (now - timedelta(days=days)).isoformat(timespec="seconds")

    return [
        {
            "order_id": "2023112500123456",
            "status": "in_transit",
            "product": "蓝牙耳机",
            "carrier": "顺丰速运",
            "tracking_no": "SF1234567890123",
            "ordered_at": ago(3),
            "shipped_at": ago(2),
            "delivered_at": None,
        },
        {
            "order_id": "2023112000887766",
            "status": "pending",
            "product": "空气炸锅",
            "carrier": None,
            "tracking_no": None,
            "ordered_at": ago(1),
            "shipped_at": None,
            "delivered_at": None,
        },
        {
            "order_id": "JD20231118001",
            "status": "delivered",
            "product": "连衣裙",
            "carrier": "京东物流",
            "tracking_no": "JDV0012345678",
            "ordered_at": ago(6),
            "shipped_at": ago(5),
            "delivered_at": ago(3),
        },
        {
            "order_id": "AB1234567890",
            "status": "delivered",
            "product": "电饭煲",
            "carrier": "中通快递",
            "tracking_no": "ZT7788990011",
            "ordered_at": ago(20),
            "shipped_at": ago(19),
            "delivered_at": ago(15),
        },
        {
            "order_id": "2024010288990011",
            "status": "shipped",
            "product": "扫地机器人",
            "carrier": "圆通速递",
            "tracking_no": "YT5566778899",
            "ordered_at": ago(2),
            "shipped_at": ago(0.5),
            "delivered_at": None,
        },
        {
            "order_id": "JD20231120002",
            "status": "delivered",
            "product": "定制刻字保温杯",
            "carrier": "京东物流",
            "tracking_no": "JDV0098765432",
            "ordered_at": ago(5),
            "shipped_at": ago(4),
            "delivered_at": ago(2),
        },
    ]


async def seed(db: aiosqlite.Connection) -> None:
    await db.execute(SCHEMA)
    rows = sample_orders(datetime.now(timezone.utc))
    await db.executemany(
        "INSERT OR IGNORE INTO orders VALUES (:order_id, :status, :product, :carrier, "
        ":tracking_no, :ordered_at, :shipped_at, :delivered_at)",
        rows,
    )
    await db.commit()


def database_ctx(path: Path):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        async with aiosqlite.connect(path) as db:
            db.row_factory = aiosqlite.Row
            await seed(db)
            app[DB] = db
            yield

    return ctx


async def get_order(request: web.Request) -> web.Response:
    if request.app[DELAY]:
        await asyncio.sleep(request.app[DELAY])  # for fault tests: a slow backend
    order_id = request.match_info["order_id"].strip().upper()
    async with request.app[DB].execute(
        "SELECT * FROM orders WHERE upper(order_id) = ?", (order_id,)
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return web.json_response({"error": "not_found"}, status=404)
    order = dict(row)
    order["status_text"] = STATUS_TEXT[order["status"]]
    order["estimated_delivery"] = estimated_delivery(order, datetime.now(timezone.utc))
    return web.json_response(order)


# Days from shipping (or from ordering, while it waits to ship) to the door.
TRANSIT_DAYS = {"pending": 4, "shipped": 3, "in_transit": 3}


def estimated_delivery(order: Dict[str, Any], now: datetime) -> str | None:
    """The carrier's estimate as the demo has it: a date, never one in the past."""
    days = TRANSIT_DAYS.get(order["status"])
    if days is None:
        return None
    start = datetime.fromisoformat(order["shipped_at"] or order["ordered_at"])
    eta = max((start + timedelta(days=days)).date(), (now + timedelta(days=1)).date())
    return eta.isoformat()


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def init_app(db_path: Path = DEFAULT_DB, delay_s: float = 0.0) -> web.Application:
    app = web.Application()
    app[DELAY] = delay_s
    app.cleanup_ctx.append(database_ctx(db_path))
    app.router.add_get("/orders/{order_id}", get_order)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m kefu.stack.demo_orders")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument(
        "--delay",
        type=float,
        default=float(os.environ.get("KEFU_DEMO_ORDERS_DELAY_S", "0")),
        help="seconds to wait before answering (fault testing)",
    )
    args = parser.parse_args()
    web.run_app(
        init_app(args.db, args.delay),
        host=args.host,
        port=args.port,
        print=lambda *_: print(json.dumps({"demo_orders": f"{args.host}:{args.port}"})),
    )


if __name__ == "__main__":
    main()
