"""The TCC pitfalls in the running pipeline, with the settlement worker killed mid-way:

- empty compensation: a wallet-only order the wallet cannot pay is never frozen (no Try),
  so settlement's Cancel finds nothing and must succeed empty, once, even when killed;
- hanging: the Try arriving after that Cancel (a redelivered order) must freeze nothing;
- duplicates: the redelivered decision after the kill has no second effect.
"""

import asyncio
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from infra.settings import Settings
from tests.support.pipeline import (
    assert_audit_clean,
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
from workers.participants import funds
from workers.runtime.faults import EXIT_CODE
from workers.tcc.barrier import Verdict

pytestmark = pytest.mark.integration


async def test_empty_cancel_survives_a_kill_and_blocks_a_late_try(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    buyer = f"buyer-empty-{uuid.uuid4().hex[:6]}"
    await fund_wallet(pool, buyer, 100, f"empty-topup:{buyer}")
    order_id = f"empty-{uuid.uuid4().hex[:8]}"
    order = order_submitted(order_id, buyer, {"sku-cap": 1}, "wallet_only")
    await publish(producer, order)
    async with simulator(services) as children:
        start_workers(children, env={"PAYFLOW_CRASH_AT": "after_commit:settlement"})
        assert await asyncio.to_thread(children.procs[-1].wait, 90) == EXIT_CODE
        start_workers(children)

        async def cancelled() -> bool:
            return await order_state(pool, order_id) == "cancelled"

        await eventually(cancelled, 90, f"{order_id} cancelled")
        # The same order again under a new event id (an upstream retry).
        again = order.model_copy(update={"event_id": uuid.uuid4()})
        await publish(producer, again)

        async def second_copy_consumed() -> bool:
            seen = await pool.fetchval(
                "SELECT 1 FROM inbox WHERE consumer = 'order_build' AND event_id = $1",
                again.event_id,
            )
            return bool(seen)

        await eventually(second_copy_consumed, 30, "the order consumed")

    barrier = {
        (r["phase"], r["origin"])
        for r in await pool.fetch(
            "SELECT phase, origin FROM tcc_barrier WHERE gid = $1 AND branch = 'funds'", order_id
        )
    }
    assert barrier == {("try", "empty_cancel"), ("cancel", "empty_cancel")}
    wallet = accounts.wallet(buyer, "EUR").account_id
    async with pool.acquire() as conn, conn.transaction():
        late = await funds.freeze(
            conn,
            order_id,
            wallet,
            100,
            "EUR",
            await conn.fetchval("SELECT now() + interval '1 hour'"),
        )
    assert late.verdict is Verdict.REFUSED  # anti-hanging: nothing frozen, ever
    row = await pool.fetchrow(
        "SELECT total, available, frozen FROM accounts WHERE account_id = $1", wallet
    )
    assert (row["total"], row["available"], row["frozen"]) == (100, 100, 0)
    assert await pool.fetchval("SELECT count(*) FROM fund_holds WHERE order_id = $1", order_id) == 0
    await assert_audit_clean(pool)
