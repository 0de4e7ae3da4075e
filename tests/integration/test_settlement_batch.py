"""Settlement handles a batch's successful payments at once: read in one query per table,
sold with a few statements for all of them (workers/settlement/sale_batch.py). An order
decided twice in one batch goes one by one, so its second decision finds the first one's
sale and changes nothing; a sale that breaks an invariant is undone whole and each order
goes one by one, where only the broken one goes to review."""

import uuid

import asyncpg
import pytest

from contracts.events.outcomes import OrderManualReview, OrderSettled
from contracts.events.payments import PaymentSucceeded
from infra.settings import Settings
from tests.support.pipeline import (
    assert_audit_clean,
    balances,
    consumed,
    fund_wallet,
    order_state,
    order_submitted,
    published,
    seed_catalogue,
    through_stages,
)
from tests.support.services import scratch_database
from workers.ledger import accounts
from workers.runtime.batch import run_batch
from workers.runtime.stage import batch_scope
from workers.settlement import sale_batch
from workers.settlement.step import Settlement

pytestmark = pytest.mark.integration


async def _paid(
    services: Settings, pool: asyncpg.Pool, buyers: list[str], n: int
) -> list[PaymentSucceeded]:
    """`n` wallet-only orders (one mug more each), round-robin over `buyers` (funded with
    1,000,000 each), carried through order build, fund freeze and the gateway request."""
    await seed_catalogue(pool)
    for b in buyers:
        await fund_wallet(pool, b, 1_000_000, f"sb-topup:{b}")
    orders = [
        order_submitted(
            f"{buyers[0]}-{i}", buyers[i % len(buyers)], {"sku-mug": 1 + i}, "wallet_only"
        )
        for i in range(n)
    ]
    events = await through_stages(
        services, pool, orders, ("order_build", "fund_freeze", "gateway_request")
    )
    paid = [e for e in events if isinstance(e, PaymentSucceeded)]
    assert len(paid) == n
    return sorted(paid, key=lambda e: e.correlation_id)


async def _purchases(pool: asyncpg.Pool, prefix: str) -> int:
    n: int = await pool.fetchval(
        "SELECT count(*) FROM ledger_transactions WHERE kind = 'purchase' AND order_id LIKE $1",
        f"{prefix}-%",
    )
    return n


async def test_a_batch_with_an_order_decided_twice_settles_each_order_once(
    services: Settings, pool: asyncpg.Pool
) -> None:
    buyer = f"sb-{uuid.uuid4().hex[:8]}"
    paid = await _paid(services, pool, [buyer], 3)
    twice = paid[0].model_copy(update={"event_id": uuid.uuid4()})  # decided again

    batch = [paid[0], twice, paid[1], paid[2]]
    done = await run_batch(pool, Settlement(), [consumed(e, i) for i, e in enumerate(batch)], 1)

    assert (done.processed, len(done.dead)) == (4, 0)
    settled = [e for e in published(done.messages) if isinstance(e, OrderSettled)]
    assert sorted(e.correlation_id for e in settled) == [p.correlation_id for p in paid]
    for p in paid:
        assert await order_state(pool, p.correlation_id) == "settled"
    assert await _purchases(pool, buyer) == 3
    spent = sum(p.payload.total.amount for p in paid)
    wallet = accounts.wallet(buyer, "EUR").account_id
    assert await balances(pool, wallet) == (1_000_000 - spent, 1_000_000 - spent, 0)
    await assert_audit_clean(pool)


async def test_a_batch_of_payments_is_sold_at_once_and_a_redelivery_changes_nothing(
    services: Settings, pool: asyncpg.Pool
) -> None:
    run = uuid.uuid4().hex[:8]
    buyers = [f"sa-{run}", f"sa-{run}-b"]
    paid = await _paid(services, pool, buyers, 5)
    settlement = Settlement()

    # The batch as the runtime runs it: reads, then the sale at once, then the flush.
    async with batch_scope(), pool.acquire() as conn, conn.transaction():
        await settlement.before_batch(list(paid), conn)
        answers = [sale_batch.sold(p) for p in paid]
        await settlement.before_commit(conn)
    assert all(a is not None and isinstance(a[0], OrderSettled) for a in answers)

    for p in paid:
        assert await order_state(pool, p.correlation_id) == "settled"
    holds = await pool.fetch(
        "SELECT DISTINCT state FROM fund_holds WHERE order_id LIKE $1", f"{buyers[0]}-%"
    )
    assert [r["state"] for r in holds] == ["confirmed"]
    stock = await pool.fetch(
        "SELECT DISTINCT state FROM stock_holds WHERE order_id LIKE $1", f"{buyers[0]}-%"
    )
    assert [r["state"] for r in stock] == ["sold"]
    assert await _purchases(pool, buyers[0]) == 5
    for i, b in enumerate(buyers):
        spent = sum(p.payload.total.amount for j, p in enumerate(paid) if j % 2 == i)
        wallet = accounts.wallet(b, "EUR").account_id
        assert await balances(pool, wallet) == (1_000_000 - spent, 1_000_000 - spent, 0)

    # The same decisions again under new event ids: each order is decided one by one, as a
    # duplicate, with nothing sold, posted or published a second time.
    again = [p.model_copy(update={"event_id": uuid.uuid4()}) for p in paid]
    done = await run_batch(pool, settlement, [consumed(e, i) for i, e in enumerate(again)], 1)
    assert (done.processed, len(done.dead), published(done.messages)) == (5, 0, [])
    assert await _purchases(pool, buyers[0]) == 5
    await assert_audit_clean(pool)


async def test_a_sale_that_breaks_an_invariant_is_undone_and_only_that_order_goes_to_review(
    services: Settings,
) -> None:
    # A database of its own: the broken hold stays broken (the audit would see it).
    async with scratch_database(services, "salebroken") as pool:
        await _a_broken_sale(services, pool)


async def _a_broken_sale(services: Settings, pool: asyncpg.Pool) -> None:
    buyer = f"sx-{uuid.uuid4().hex[:8]}"
    paid = await _paid(services, pool, [buyer], 4)
    broken = paid[1].correlation_id
    # The hold and the transaction disagree: confirming it would take the wrong amount.
    await pool.execute("UPDATE fund_holds SET amount = amount - 1 WHERE order_id = $1", broken)

    done = await run_batch(pool, Settlement(), [consumed(e, i) for i, e in enumerate(paid)], 1)

    assert (done.processed, len(done.dead)) == (4, 0)
    out = published(done.messages)
    assert [e.correlation_id for e in out if isinstance(e, OrderManualReview)] == [broken]
    settled = sorted(e.correlation_id for e in out if isinstance(e, OrderSettled))
    assert settled == [p.correlation_id for p in paid if p.correlation_id != broken]
    assert await order_state(pool, broken) == "manual_review"
    for oid in settled:
        assert await order_state(pool, oid) == "settled"
    assert await _purchases(pool, buyer) == 3
    # Nothing of the broken order was sold: its holds wait for the operator, released.
    states = await pool.fetch("SELECT state FROM stock_holds WHERE order_id = $1", broken)
    assert {r["state"] for r in states} == {"released"}
