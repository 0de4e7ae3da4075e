"""The bench's orders: plain carts that every stage handles on its normal path.

Unlike the demo's mix there are no slow paths (unknown SKUs, amounts the sweeper must ask
about): the bench measures the pipeline, not the sweeper's schedule. Payment preferences
still mix wallet, split and card payments, and every tenth order carries a coupon.
"""

import random

from contracts.events.orders import OrderLine, OrderSubmitted, OrderSubmittedPayload
from workers.ops.demo_orders import order_id, wants_coupon
from workers.ops.seed import CURRENCY, SKUS

BUYERS = 400
# Buyers 1..RICH_BUYERS can pay anything from their wallet; the others hold a little, so
# their wallet_first orders are split between the wallet and the card.
RICH_BUYERS = 200
RICH_BALANCE = 100_000_000
SMALL_BALANCE = 800
STOCK = 100_000_000
COUPON_ID, COUPON_CODE = "cp-rate", "TENOFF"
HOT_MERCHANT = "m-acme"
HOT_SHARE = 0.9
# Everyday SKUs only: the price endings the simulator turns into declines or mismatches
# (and the scarce one) are left out.
PLAIN = ("sku-tee", "sku-cap", "sku-novel", "sku-atlas", "sku-mug", "sku-lamp")
HOT_SKUS = tuple(s[0] for s in SKUS if s[1] == HOT_MERCHANT and s[0] in PLAIN)


def buyer_of(i: int) -> str:
    return f"bench-buyer-{1 + i % BUYERS:04d}"


def balance_of(n: int) -> int:
    return RICH_BALANCE if n <= RICH_BUYERS else SMALL_BALANCE


def bench_order(run_id: str, i: int, rng: random.Random, *, hot: bool) -> OrderSubmitted:
    """Order i of a run; with `hot`, 90 % of the orders buy only from one merchant."""
    preference = rng.choice(["wallet_first"] * 4 + ["wallet_only"] * 2 + ["gateway_only"] * 4)
    skus = HOT_SKUS if hot and rng.random() < HOT_SHARE else PLAIN
    lines = [
        OrderLine(sku_id=s, quantity=rng.randint(1, 4))
        for s in rng.sample(skus, rng.randint(1, min(3, len(skus))))
    ]
    oid = order_id(run_id, i)
    payload = OrderSubmittedPayload(
        order_id=oid,
        buyer_id=buyer_of(i),
        currency=CURRENCY,
        items=lines,
        coupon_codes=[COUPON_CODE] if wants_coupon(i) else [],
        payment_preference=preference,
    )
    return OrderSubmitted.new(oid, payload, idempotency_key=oid)
