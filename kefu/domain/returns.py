"""Whether an order can be returned, exchanged or refunded under the policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Optional

from kefu.domain.policy.loader import Service

RETURN_TYPES = ("退货", "换货", "退款")


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    why: str = ""  # for the visitor, after the order id: 已签收10天，超过了7天
    exception: Optional[str] = None


def check(
    *,
    status: str,
    product: str,
    delivered_at: Optional[str],
    service: Service,
    today: date,
) -> Eligibility:
    """Seven days from delivery with no reason needed, minus the policy's exceptions."""
    for exception in service.return_exceptions:
        if any(keyword in (product or "") for keyword in exception.keywords):
            return Eligibility(False, f"中的商品属于{exception.reason}", exception.id)
    if status != "delivered" or not delivered_at:
        return Eligibility(True)  # not yet delivered: intercepted and refunded
    try:
        delivered = datetime.fromisoformat(delivered_at).date()
    except ValueError:
        return Eligibility(False, "的签收日期暂时无法核实")
    days = (today - delivered).days
    if days > service.return_window_days:
        return Eligibility(False, f"已签收{days}天，超过了{service.return_window_days}天")
    return Eligibility(True)


def return_type_of(text: Optional[str]) -> Optional[str]:
    """退货 / 换货 / 退款 from how a visitor answers the question."""
    text = text or ""
    if any(w in text for w in ("换货", "换一", "换个", "换新", "调换", "换成", "换")):
        return "换货"
    if any(w in text for w in ("退款", "退钱", "退费", "钱退")):
        return "退款"
    if any(w in text for w in ("退货", "退掉", "退回", "退了", "退")):
        return "退货"
    return None
