"""Fund freeze is set-based: a whole batch is read, planned and written at once. What one
event did before, the batch still does per order: a buyer's orders share the wallet in
order, a duplicate freezes nothing twice, a short wallet fails only its own order, and an
order whose Cancel came first is dead-lettered while the rest of the batch goes through, as
is an event that is not the order we built."""

import uuid
from collections.abc import Sequence

import asyncpg
import pytest

from contracts.codec import decode
from contracts.envelope import Envelope
from contracts.events.funds import FundsFrozen
from contracts.events.orders import OrderBuilt
from contracts.events.payments import PaymentFailed
from contracts.money import Money
from contracts.topics import ORDERS_BUILT
from tests.support.pipeline import (
    balances,
    consumed,
    fund_wallet,
    order_state,
    order_submitted,
    seed_catalogue,
)
from workers.fund_freeze.step import FundFreeze
from workers.ledger import accounts
from workers.order_build.step import OrderBuild
from workers.runtime.batch import run_batch
from workers.tcc.barrier import Phase, enter

pytestmark = pytest.mark.integration


async def _built(pool: asyncpg.Pool, orders: Sequence[Envelope]) -> list[OrderBuilt]:
    result = await run_batch(pool, OrderBuild(), [consumed(o, i) for i, o in enumerate(orders)], 1)
    built = [decode(m.topic, m.value) for m in result.messages if m.topic == ORDERS_BUILT.name]
    assert len(built) == len(orders)
    return [b for b in built if isinstance(b, OrderBuilt)]


async def test_a_batch_freezes_each_order_as_one_event_at_a_time_would(
    pool: asyncpg.Pool,
) -> None:
    await seed_catalogue(pool)
    run = uuid.uuid4().hex[:8]
    rich, poor = f"ff-rich-{run}", f"ff-poor-{run}"
    orders = [
        order_submitted(f"ff-{run}-a", rich, {"sku-mug": 1}),
        order_submitted(f"ff-{run}-b", rich, {"sku-mug": 1}),
        order_submitted(f"ff-{run}-c", poor, {"sku-mug": 1}, "wallet_only"),
        order_submitted(f"ff-{run}-d", rich, {"sku-mug": 1}),
    ]
    a, b, c, d = await _built(pool, orders)
    price = a.payload.total.amount
    await fund_wallet(pool, rich, price + price // 2, f"ff-topup:{rich}")
    # Order d's Cancel ran before its Try (an empty compensation): it must never be held.
    async with pool.acquire() as conn, conn.transaction():
        await enter(conn, d.correlation_id, "funds", Phase.CANCEL)
    again = b.model_copy(update={"event_id": uuid.uuid4()})  # b under another event id

    events: list[Envelope] = [a, b, again, c, d]
    dlq = f"{ORDERS_BUILT.name}.dlq"
    result = await run_batch(pool, FundFreeze(), [consumed(e, i) for i, e in enumerate(events)], 1)

    assert (result.processed, len(result.dead)) == (4, 1)
    assert result.dead[0].key == d.correlation_id.encode()
    out = {
        e.correlation_id: e
        for e in (decode(m.topic, m.value) for m in result.messages if m.topic != dlq)
    }
    frozen_a, frozen_b, failed_c = (
        out[a.correlation_id],
        out[b.correlation_id],
        out[c.correlation_id],
    )
    assert isinstance(frozen_a, FundsFrozen) and isinstance(frozen_b, FundsFrozen)
    # The rich wallet pays a whole and what is left of b; the gateway the rest of b.
    assert frozen_a.payload.wallet_part.amount == price
    assert frozen_b.payload.wallet_part.amount == price // 2
    assert frozen_b.payload.gateway_part.amount == price - price // 2
    assert (
        isinstance(failed_c, PaymentFailed) and failed_c.payload.reason_code == "insufficient_funds"
    )
    wallet = accounts.wallet(rich, "EUR").account_id
    assert await balances(pool, wallet) == (price + price // 2, 0, price + price // 2)
    assert [await order_state(pool, o.correlation_id) for o in (a, b, c, d)] == [
        "funds_frozen",
        "funds_frozen",
        "built",
        "built",
    ]
    holds = await pool.fetchval(
        "SELECT count(*) FROM fund_holds WHERE order_id = ANY($1::text[])",
        [o.correlation_id for o in (a, b, c, d)],
    )
    assert holds == 2

    redelivered = await run_batch(
        pool, FundFreeze(), [consumed(e, i) for i, e in enumerate(events)], 1
    )
    assert redelivered.processed == 0 and len(redelivered.dead) == 1  # d is parked again
    assert await balances(pool, wallet) == (price + price // 2, 0, price + price // 2)


async def test_an_order_built_unlike_the_order_we_built_freezes_nothing(
    pool: asyncpg.Pool,
) -> None:
    """The order, its buyer, total and sub-orders must be those order build stored: a forged
    event (an order never built) and an altered one (another total) are dead-lettered, the
    rest of the batch goes through."""
    await seed_catalogue(pool)
    run = uuid.uuid4().hex[:8]
    buyer = f"ff-forged-{run}"
    (real,) = await _built(pool, [order_submitted(f"ff-{run}-real", buyer, {"sku-mug": 1})])
    price = real.payload.total.amount
    await fund_wallet(pool, buyer, 3 * price, f"ff-topup:{buyer}")
    never = OrderBuilt.new(
        f"ff-{run}-never",
        real.payload.model_copy(update={"order_id": f"ff-{run}-never"}),
        idempotency_key=f"ff-{run}-never",
    )
    cheaper = Money(amount=1, currency=real.payload.total.currency)
    altered = OrderBuilt.new(
        real.correlation_id,
        real.payload.model_copy(update={"total": cheaper}),
        idempotency_key=f"ff-{run}-altered",
    )

    events: list[Envelope] = [never, altered, real]
    result = await run_batch(pool, FundFreeze(), [consumed(e, i) for i, e in enumerate(events)], 1)

    assert (result.processed, len(result.dead)) == (1, 2)
    reasons = await pool.fetch(
        "SELECT reason_code, detail FROM dead_letters WHERE event_id = ANY($1::uuid[])",
        [never.event_id, altered.event_id],
    )
    assert [r["reason_code"] for r in reasons] == ["order_not_built"] * 2
    assert any("was never built" in r["detail"] for r in reasons)
    assert any(f"total 1 {cheaper.currency}" in r["detail"] for r in reasons)
    # The real order froze once, at its real price; nothing exists for the forged one.
    wallet = accounts.wallet(buyer, "EUR").account_id
    assert await balances(pool, wallet) == (3 * price, 2 * price, price)
    assert await order_state(pool, real.correlation_id) == "funds_frozen"
    assert await order_state(pool, never.correlation_id) is None
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM transactions WHERE order_id = ANY($1::text[])",
            [real.correlation_id, never.correlation_id],
        )
        == 1
    )
