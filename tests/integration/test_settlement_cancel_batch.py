"""Settlement cancels a batch's failed payments at once (workers/settlement/cancel_batch.py):
every hold of each order goes back with a few statements for all of them, an order that
froze nothing (an empty Cancel) among them; a redelivery, decided one by one, changes
nothing; an order decided twice in the batch goes one by one."""

import uuid

import asyncpg
import pytest

from contracts.events.funds import FundsFrozen
from contracts.events.outcomes import OrderCancelled
from contracts.events.payments import PaymentFailed
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
from workers.ledger import accounts
from workers.runtime.batch import run_batch
from workers.runtime.stage import batch_scope
from workers.settlement import cancel_batch
from workers.settlement.step import Settlement
from workers.sweeper.outcomes import decision_payload

pytestmark = pytest.mark.integration

FUNDED = 1_000_000


async def _expired(pool: asyncpg.Pool, frozen: FundsFrozen) -> PaymentFailed:
    """The failure the sweeper publishes when the payment window closes unpaid."""
    async with pool.acquire() as conn:
        payload = await decision_payload(
            conn, frozen.correlation_id, "payment_window_expired", "the payment window closed"
        )
    return PaymentFailed.caused_by(frozen, payload)


async def test_failed_payments_are_cancelled_at_once_and_a_redelivery_changes_nothing(
    services: Settings, pool: asyncpg.Pool
) -> None:
    await seed_catalogue(pool)
    run = uuid.uuid4().hex[:8]
    rich, poor = f"cb-{run}", f"cb-{run}-poor"
    await fund_wallet(pool, rich, FUNDED, f"cb-topup:{rich}")
    orders = [
        order_submitted(f"cb-{run}-a", rich, {"sku-mug": 1}),
        order_submitted(f"cb-{run}-b", rich, {"sku-mug": 2}),
        order_submitted(f"cb-{run}-c", poor, {"sku-mug": 1}, "wallet_only"),  # froze nothing
    ]
    out = await through_stages(services, pool, orders, ("order_build", "fund_freeze"))
    frozen = sorted((e for e in out if isinstance(e, FundsFrozen)), key=lambda e: e.correlation_id)
    short = [e for e in out if isinstance(e, PaymentFailed)]
    assert (len(frozen), len(short)) == (2, 1)
    failed = [await _expired(pool, f) for f in frozen] + short
    ids = [e.correlation_id for e in failed]
    stock_before = await pool.fetchval("SELECT held FROM stock WHERE sku_id = 'sku-mug'")

    settlement = Settlement()
    async with batch_scope(), pool.acquire() as conn, conn.transaction():
        await settlement.before_batch(list(failed), conn)
        answers = [cancel_batch.cancelled(e) for e in failed]
        await settlement.before_commit(conn)
    assert all(a is not None and isinstance(a[0], OrderCancelled) for a in answers)
    reasons = [a[0].payload.reason_code for a in answers if a]
    assert reasons == ["payment_window_expired"] * 2 + ["insufficient_funds"]

    assert [await order_state(pool, o) for o in ids] == ["cancelled"] * 3
    statuses = await pool.fetch(
        "SELECT DISTINCT status FROM transactions WHERE order_id = ANY($1::text[])", ids
    )
    assert [r["status"] for r in statuses] == ["cancelled"]
    wallet = accounts.wallet(rich, "EUR").account_id
    assert await balances(pool, wallet) == (FUNDED, FUNDED, 0)
    holds = await pool.fetch(
        "SELECT DISTINCT state FROM stock_holds WHERE order_id = ANY($1::text[])", ids
    )
    assert [r["state"] for r in holds] == ["released"]
    stock_after = await pool.fetchval("SELECT held FROM stock WHERE sku_id = 'sku-mug'")
    assert stock_before - stock_after == 1 + 2 + 1
    empty = await pool.fetchval(
        "SELECT origin FROM tcc_barrier WHERE gid = $1 AND branch = 'funds' AND phase = 'cancel'",
        short[0].correlation_id,
    )
    assert empty == "empty_cancel"

    # Again under new event ids, one of them twice in the batch: each decided one by one as
    # a duplicate, nothing returned or published a second time.
    again = [e.model_copy(update={"event_id": uuid.uuid4()}) for e in failed]
    again.append(again[0].model_copy(update={"event_id": uuid.uuid4()}))
    done = await run_batch(pool, settlement, [consumed(e, i) for i, e in enumerate(again)], 1)
    assert (done.processed, len(done.dead), published(done.messages)) == (4, 0, [])
    assert await balances(pool, wallet) == (FUNDED, FUNDED, 0)
    assert await pool.fetchval("SELECT held FROM stock WHERE sku_id = 'sku-mug'") == stock_after
    await assert_audit_clean(pool)
