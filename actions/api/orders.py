"""aiohttp client for the order backend (the demo one, or a shop's own)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Dict, Optional
from urllib.parse import quote

import aiohttp


class OrderLookupError(Exception):
    """The backend could not answer: down, slow past the deadline, or broken."""


class OrderNotFound(Exception):
    pass


@dataclass(frozen=True)
class Order:
    order_id: str
    status: str
    status_text: str
    product: str
    carrier: Optional[str]
    tracking_no: Optional[str]
    ordered_at: str
    shipped_at: Optional[str]
    delivered_at: Optional[str]
    estimated_delivery: Optional[str] = None  # a date, while the order is on its way

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "Order":
        return cls(
            order_id=str(data["order_id"]),
            status=str(data["status"]),
            status_text=str(data.get("status_text") or data["status"]),
            product=str(data.get("product") or ""),
            carrier=data.get("carrier"),
            tracking_no=data.get("tracking_no"),
            ordered_at=str(data.get("ordered_at") or ""),
            shipped_at=data.get("shipped_at"),
            delivered_at=data.get("delivered_at"),
            estimated_delivery=data.get("estimated_delivery"),
        )


class OrderClient:
    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def get(self, order_id: str) -> Order:
        url = f"{self.base_url}/orders/{quote(order_id, safe='')}"
        try:
            async with aiohttp.ClientSession(timeout=self.timeout) as session:
                async with session.get(url) as response:
                    if response.status == 404:
                        raise OrderNotFound(order_id)
                    if response.status != 200:
                        raise OrderLookupError(f"order backend answered {response.status}")
                    return Order.from_json(await response.json())
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, TypeError, KeyError) as e:
            raise OrderLookupError(f"order backend unavailable: {e!r}") from e
