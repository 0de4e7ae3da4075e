"""Pricing an order: lines from the catalogue, coupons, and the split into sub-orders."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from workers.order_build.rules import (
    CatalogueItem,
    Coupon,
    Rejection,
    allocate,
    coupon_discount,
    unit_price,
)


@dataclass(frozen=True)
class Line:
    sku_id: str
    quantity: int
    unit_price: int

    @property
    def total(self) -> int:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class Part:
    """A sub-order: one merchant shipping from one warehouse."""

    sub_order_id: str
    merchant_id: str
    warehouse_id: str
    lines: tuple[Line, ...]
    discount: int
    # The part of `discount` the platform pays for (platform-wide coupons); the rest is the
    # merchant's own coupon and simply lowers what the merchant is paid.
    platform_discount: int = 0

    @cached_property  # read by amount, the order's totals and the answer
    def subtotal(self) -> int:
        return sum(line.total for line in self.lines)

    @property
    def amount(self) -> int:
        return self.subtotal - self.discount


@dataclass(frozen=True)
class PricedOrder:
    order_id: str
    currency: str
    parts: tuple[Part, ...]
    grant_ids: tuple[str, ...]

    @cached_property
    def subtotal(self) -> int:
        return sum(p.subtotal for p in self.parts)

    @property
    def discount(self) -> int:
        return sum(p.discount for p in self.parts)

    @property
    def total(self) -> int:
        return self.subtotal - self.discount


def price_order(
    order_id: str,
    currency: str,
    quantities: dict[str, int],
    catalogue: dict[str, CatalogueItem],
    coupons: list[Coupon],
    now: datetime,
) -> PricedOrder:
    groups: dict[tuple[str, str], list[Line]] = defaultdict(list)
    for sku_id in sorted(quantities):
        item = catalogue.get(sku_id)
        if item is None:
            raise Rejection("unknown_sku", f"SKU {sku_id} is not in the catalogue or not on sale")
        if item.currency != currency:
            raise Rejection(
                "currency_mismatch",
                f"SKU {sku_id} is priced in {item.currency}, the order is in {currency}",
            )
        qty = quantities[sku_id]
        groups[(item.merchant_id, item.warehouse_id)].append(
            Line(sku_id, qty, unit_price(item, qty))
        )
    keys = sorted(groups)
    subtotals = [sum(line.total for line in groups[k]) for k in keys]
    discounts = [0] * len(keys)
    platform_discounts = [0] * len(keys)
    for coupon in coupons:
        if coupon.currency != currency:
            raise Rejection(
                "coupon_currency_mismatch",
                f"coupon {coupon.code} is in {coupon.currency}, the order in {currency}",
            )
        # Eligible: what remains to pay on the parts the coupon covers.
        eligible = [
            (subtotals[i] - discounts[i]) if coupon.merchant_id in (None, k[0]) else 0
            for i, k in enumerate(keys)
        ]
        if sum(eligible) == 0:
            raise Rejection(
                "coupon_not_applicable",
                f"coupon {coupon.code} applies to none of the order's merchants",
            )
        off = coupon_discount(coupon, sum(eligible), now)
        for i, share in enumerate(allocate(off, eligible)):
            discounts[i] += share
            if coupon.merchant_id is None:
                platform_discounts[i] += share
    parts = tuple(
        Part(
            f"{order_id}-{n + 1}", k[0], k[1], tuple(groups[k]), discounts[n], platform_discounts[n]
        )
        for n, k in enumerate(keys)
    )
    return PricedOrder(order_id, currency, parts, tuple(c.grant_id for c in coupons))
