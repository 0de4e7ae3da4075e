"""Kill the worker process (as abruptly as kill -9) at the two dangerous points of every
batch, restart it, and prove the order still completes exactly once.

Why it is survivable:
- after_commit: the state change, the inbox row and the outputs (outbox) committed together,
  the offset was not. The restarted worker gets the event again, finds it in its inbox, and
  publishes the stored outputs (same event ids) instead of applying it twice.
- after_publish: outputs are out, the offset is not committed. Redelivery is answered from
  the inbox; the duplicate outputs carry the same event ids, which the next stage's inbox
  drops.
"""

import asyncio
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from contracts.events.orders import (
    PaymentPreference,
)
from contracts.topics import ORDERS_OUTCOMES
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
from workers.runtime.faults import EXIT_CODE

pytestmark = pytest.mark.integration

CASES = [
    ("after_commit", "fund_freeze", "wallet_first"),
    ("after_commit", "callback_handling", "gateway_only"),
    ("after_publish", "settlement", "wallet_first"),
    ("after_commit", "order_build", "gateway_only"),
]


@pytest.mark.parametrize(("point", "stage", "preference"), CASES)
async def test_killed_worker_completes_the_order_exactly_once(
    services: Settings,
    pool: asyncpg.Pool,
    producer: AIOKafkaProducer,
    point: str,
    stage: str,
    preference: PaymentPreference,
) -> None:
    await seed_catalogue(pool)
    buyer = f"buyer-crash-{uuid.uuid4().hex[:6]}"
    await fund_wallet(pool, buyer, 50_000, f"crash-topup:{buyer}")
    order_id = f"crash-{stage}-{uuid.uuid4().hex[:8]}"
    order = order_submitted(order_id, buyer, {"sku-tee": 2, "sku-novel": 1}, preference)

    async with simulator(services) as children:
        # Only a batch holding this order dies: messages earlier tests left on the stage's
        # topic (poison, events nobody consumed) would otherwise set it off first.
        start_workers(children, env={"PAYFLOW_CRASH_AT": f"{point}:{stage}:{order_id}"})
        await publish(producer, order)
        crashed = children.procs[-1]
        code = await asyncio.to_thread(crashed.wait, 90)
        assert code == EXIT_CODE, "the worker should have died at the crash point"
        if point == "after_commit":
            # Committed, and owed: a stage's rows are not marked, they are owed until the
            # cause's offset is committed (the replacement gets the cause again).
            unsent = await pool.fetchval(
                """SELECT count(*) FROM outbox WHERE producer = $1 AND message_key = $2
                   AND published_at IS NULL""",
                stage,
                order_id,
            )
            assert unsent == 1

        start_workers(children)  # the replacement, without the crash point
        await eventually(lambda: _settled(pool, order_id), 90, f"{order_id} settled")

    await _assert_exactly_once(pool, order_id, preference)


async def _settled(pool: asyncpg.Pool, order_id: str) -> bool:
    return await order_state(pool, order_id) == "settled"


async def _assert_exactly_once(pool: asyncpg.Pool, order_id: str, preference: str) -> None:
    total = await pool.fetchval("SELECT total FROM orders WHERE order_id = $1", order_id)
    assert total == 2 * 1500 + 2500  # two tees below their first price tier, one novel
    postings = await pool.fetch(
        "SELECT ledger_txn_id FROM ledger_transactions WHERE order_id = $1", order_id
    )
    assert len(postings) == 1
    paid_out = await pool.fetchval(
        """SELECT sum(amount) FROM ledger_entries e JOIN ledger_transactions t USING (ledger_txn_id)
           WHERE t.order_id = $1 AND (e.leg LIKE 'merchant:%' OR e.leg LIKE 'fee:%')""",
        order_id,
    )
    assert paid_out == total
    holds = await pool.fetch("SELECT state FROM fund_holds WHERE order_id = $1", order_id)
    assert [h["state"] for h in holds] == ([] if preference == "gateway_only" else ["confirmed"])
    stock = await pool.fetch("SELECT state FROM stock_holds WHERE order_id = $1", order_id)
    assert {s["state"] for s in stock} == {"sold"} and len(stock) == 2
    outcomes = await pool.fetchval(
        "SELECT count(DISTINCT event_id) FROM outbox WHERE topic = $1 AND message_key = $2",
        ORDERS_OUTCOMES.name,
        order_id,
    )
    assert outcomes == 1
    await assert_audit_clean(pool)
