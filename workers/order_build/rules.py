"""Pure pricing rules: quantity tiers, coupons, and exact splitting of a discount."""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from contracts.events.orders import OrderLine


class Rejection(Exception):
    """The order cannot be built as submitted; `code` is stable, `detail` says exactly why."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


def check_payment_method(method: str, routes: Mapping[str, str]) -> None:
    """Only a method some gateway adapter serves (PAYFLOW_GATEWAY_ROUTES) can be paid."""
    if method not in routes:
        accepted = ", ".join(sorted(routes))
        raise Rejection(
            "unsupported_payment_method",
            f"payment method {method!r} is not accepted; accepted: {accepted}",
        )


def wanted_quantities(lines: Iterable[OrderLine]) -> Counter[str]:
    """Units wanted per SKU: a SKU on several lines is wanted once, for their sum."""
    wanted: Counter[str] = Counter()
    for line in lines:
        wanted[line.sku_id] += line.quantity
    return wanted


@dataclass(frozen=True)
class CatalogueItem:
    sku_id: str
    merchant_id: str
    warehouse_id: str
    category_id: str
    currency: str
    unit_price: int
    tiers: tuple[tuple[int, int], ...] = ()  # (min_quantity, unit_price)


def unit_price(item: CatalogueItem, quantity: int) -> int:
    """The price of the highest tier the quantity reaches; the base price below all tiers."""
    price = item.unit_price
    for min_quantity, tier_price in sorted(item.tiers):
        if quantity >= min_quantity:
            price = tier_price
    return price


@dataclass(frozen=True)
class Coupon:
    grant_id: str
    code: str
    kind: str  # full_reduction | discount_rate | ladder
    currency: str
    valid_from: datetime
    valid_until: datetime
    merchant_id: str | None = None  # None: platform-wide
    threshold: int = 0
    reduction: int = 0
    rate_bps: int = 0
    max_discount: int | None = None
    ladder: tuple[tuple[int, int], ...] = ()  # (threshold, reduction)


def coupon_discount(coupon: Coupon, eligible: int, now: datetime) -> int:
    """Discount for `eligible` minor units; never more than `eligible`."""
    if not coupon.valid_from <= now < coupon.valid_until:
        raise Rejection(
            "coupon_expired",
            f"coupon {coupon.code} is valid from "
            f"{coupon.valid_from.isoformat()} until {coupon.valid_until.isoformat()}",
        )
    if coupon.kind == "full_reduction":
        if eligible < coupon.threshold:
            raise Rejection(
                "coupon_threshold_not_met",
                f"coupon {coupon.code} needs {coupon.threshold}, eligible {eligible}",
            )
        discount = coupon.reduction
    elif coupon.kind == "discount_rate":
        discount = eligible * coupon.rate_bps // 10_000
        if coupon.max_discount is not None:
            discount = min(discount, coupon.max_discount)
    elif coupon.kind == "ladder":
        reached = [(thr, red) for thr, red in coupon.ladder if eligible >= thr]
        if not reached:
            raise Rejection(
                "coupon_threshold_not_met",
                f"coupon {coupon.code}: eligible {eligible} reaches no ladder step",
            )
        discount = max(reached)[1]  # the highest step reached applies
    else:
        raise Rejection("coupon_unknown_kind", f"coupon {coupon.code} has kind {coupon.kind!r}")
    return min(discount, eligible)


def allocate(amount: int, weights: Sequence[int]) -> list[int]:
    """Split `amount` in proportion to `weights`, exactly (largest remainder); no part exceeds
    its weight when amount <= sum(weights)."""
    total = sum(weights)
    if amount == 0:
        return [0] * len(weights)
    if amount > total:
        raise ValueError(f"cannot allocate {amount} over weights summing to {total}")
    shares = [amount * w // total for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % total), i))
    for i in remainders[: amount - sum(shares)]:
        shares[i] += 1
    return shares
