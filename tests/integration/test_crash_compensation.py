"""Crashes on the compensation paths: a Cancel interrupted by kill -9 still releases every
hold exactly once, and a withdrawal interrupted around its payout pays out exactly once."""

import asyncio
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from contracts.events.wallet import WithdrawalRequested, WithdrawalRequestedPayload
from contracts.money import Money
from infra.settings import Settings
from tests.support.pipeline import (
    assert_audit_clean,
    balances,
    eventually,
    fund_wallet,
    order_state,
    order_submitted,
    publish,
    seed_catalogue,
    simulator,
    start_workers,
)
from workers.ledger import accounts
from workers.runtime.faults import EXIT_CODE

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("point", ["after_commit", "after_publish"])
async def test_killed_cancel_releases_every_hold_once(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer, point: str
) -> None:
    await seed_catalogue(pool)
    buyer = f"buyer-cancel-{uuid.uuid4().hex[:6]}"
    await fund_wallet(pool, buyer, 500, f"cancel-topup:{buyer}")
    order_id = f"cancel-{uuid.uuid4().hex[:8]}"
    # 10.13 EUR: 5.00 from the wallet (frozen), 5.13 by card, which the gateway declines.
    await publish(
        producer,
        order_submitted(order_id, buyer, {"sku-declined": 1}),
    )
    async with simulator(services) as children:
        start_workers(children, env={"PAYFLOW_CRASH_AT": f"{point}:settlement"})
        assert await asyncio.to_thread(children.procs[-1].wait, 90) == EXIT_CODE
        start_workers(children)

        async def cancelled() -> bool:
            return await order_state(pool, order_id) == "cancelled"

        await eventually(cancelled, 90, f"{order_id} cancelled")
    assert await balances(pool, accounts.wallet(buyer, "EUR").account_id) == (500, 500, 0)
    holds = await pool.fetch("SELECT state FROM fund_holds WHERE order_id = $1", order_id)
    assert [h["state"] for h in holds] == ["cancelled"]
    stock = await pool.fetch("SELECT state FROM stock_holds WHERE order_id = $1", order_id)
    assert [s["state"] for s in stock] == ["released"]
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM ledger_transactions WHERE order_id = $1", order_id
        )
        == 0
    )
    await assert_audit_clean(pool)


@pytest.mark.parametrize("point", ["after_commit", "after_publish"])
async def test_killed_withdrawal_pays_out_once(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer, point: str
) -> None:
    buyer = f"buyer-wd-{uuid.uuid4().hex[:6]}"
    await fund_wallet(pool, buyer, 9_000, f"wd-topup:{buyer}")
    op = f"wd-{uuid.uuid4().hex[:8]}"
    await publish(
        producer,
        WithdrawalRequested.new(
            op,
            WithdrawalRequestedPayload(
                operation_id=op,
                buyer_id=buyer,
                amount=Money(amount=4_000, currency="EUR"),
                destination="iban-crash",
            ),
            idempotency_key=op,
        ),
    )
    async with simulator(services) as children:
        start_workers(children, env={"PAYFLOW_CRASH_AT": f"{point}:wallet"})
        assert await asyncio.to_thread(children.procs[-1].wait, 90) == EXIT_CODE
        start_workers(children)

        async def completed() -> bool:
            status = await pool.fetchval(
                "SELECT status FROM wallet_operations WHERE operation_id = $1", op
            )
            return bool(status == "completed")

        await eventually(completed, 90, f"{op} completed")
    assert await balances(pool, accounts.wallet(buyer, "EUR").account_id) == (5_000, 5_000, 0)
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM ledger_transactions WHERE idempotency_key = $1",
            f"withdrawal:{op}",
        )
        == 1
    )
    await assert_audit_clean(pool)
