"""The demo's orders: a deterministic mix that exercises every outcome."""

import random

from contracts.events.orders import OrderLine, OrderSubmitted, OrderSubmittedPayload
from workers.ops.seed import CURRENCY, buyer_id

NORMAL_SKUS = ["sku-tee", "sku-cap", "sku-novel", "sku-atlas", "sku-mug", "sku-lamp"]
BUYERS = 40


def order_id(run_id: str, i: int) -> str:
    return f"{run_id}-{i:05d}"


def coupon_grant_id(run_id: str, i: int) -> str:
    return f"{run_id}-g{i:05d}"


def wants_coupon(i: int) -> bool:
    return i % 10 == 4


def demo_order(run_id: str, i: int, rng: random.Random) -> OrderSubmitted:
    """Order i of a run. Special slots: a declined card, a duplicated callback, a callback
    with the wrong amount (the gateway's own record decides: settled), an unknown SKU,
    scarce stock; the rest is a random cart."""
    preference = rng.choice(["wallet_first"] * 5 + ["wallet_only"] * 2 + ["gateway_only"] * 3)
    lines = [
        OrderLine(sku_id=s, quantity=rng.randint(1, 4))
        for s in rng.sample(NORMAL_SKUS, rng.randint(1, 3))
    ]
    coupons: list[str] = ["TENOFF"] if wants_coupon(i) else []
    special = {3: "sku-declined", 7: "sku-dupcall", 11: "sku-mismatch"}.get(i % 50)
    if special:
        preference, lines, coupons = "gateway_only", [OrderLine(sku_id=special, quantity=1)], []
    elif i % 40 == 5:
        lines = [OrderLine(sku_id="sku-retired", quantity=1)]
    elif i % 60 == 9:
        # Paid by card, so the one order that gets the scarce stock keeps it: a wallet order
        # cancelled for lack of funds would give it back to the next one, and how many fit
        # would depend on timing.
        preference, lines = "gateway_only", [OrderLine(sku_id="sku-rare", quantity=2)]
    oid = order_id(run_id, i)
    payload = OrderSubmittedPayload(
        order_id=oid,
        buyer_id=buyer_id(1 + i % BUYERS),
        currency=CURRENCY,
        items=lines,
        coupon_codes=coupons,
        payment_preference=preference,
    )
    return OrderSubmitted.new(oid, payload, idempotency_key=oid)
