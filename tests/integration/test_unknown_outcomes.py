"""Unknown gateway outcomes never block a partition, and the sweeper resolves them: the real
simulator over HTTP (with fault modes), the webhook, every money stage and the sweeper in
this process, real Kafka and Postgres."""

import json

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from infra.settings import Settings
from tests.support.gateway_edge import partition_of, payment, pipeline, reaches, uid
from tests.support.pipeline import (
    assert_audit_clean,
    balances,
    eventually,
    fund_wallet,
    order_submitted,
    publish,
    seed_catalogue,
)

pytestmark = pytest.mark.integration


async def test_timeout_after_charge_is_unknown_the_partition_moves_and_the_sweeper_settles(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    buyer = uid("buyer-unknown")
    await fund_wallet(pool, buyer, 100_000, f"unknown:{buyer}")
    first = order_submitted(uid("ord-hang"), buyer, {"sku-tee": 1}, "gateway_only")
    parts = services.topic_partitions
    # A later order on the same partition, paid from the wallet: it must not wait.
    later_id = next(
        i
        for i in (uid("ord-after") for _ in range(1000))
        if partition_of(i, parts) == partition_of(first.correlation_id, parts)
    )
    later = order_submitted(later_id, buyer, {"sku-cap": 1}, "wallet_only")
    # The charge is made but its answer withheld longer than this test waits: a stage that
    # waited for the answer would hold the partition and the later order with it.
    env = {"PAYFLOW_SIM_FAULTS": "timeout_after_charge=1", "PAYFLOW_SIM_HANG_MS": "120000"}
    # The callback is what the simulator sends once the charge settles; losing it here
    # leaves the sweeper to find the truth by asking.
    env["PAYFLOW_SIM_FAULTS"] += ",lost_callback=1"
    async with pipeline(services, pool, producer, env):
        await publish(producer, first)
        await publish(producer, later)
        await reaches(pool, later_id, "settled")
        await reaches(pool, first.correlation_id, "settled")
    row = await payment(pool, first.correlation_id)
    assert row["adapter"] == "direct"
    assert row["idempotency_key"] == f"payflow:{row['payment_id']}"
    assert row["status"] == "succeeded" and row["gateway_ref"]
    # Both create attempts went unanswered (kept as evidence), then the sweeper asked.
    evidence = json.loads(row["evidence"])
    unanswered = [e for e in evidence[:2] if "outcome unknown" in str(e.get("note"))]
    assert len(unanswered) == 2 and all(e["request"].startswith("POST") for e in unanswered)
    assert evidence[2]["result"] == "succeeded" and row["checks"] == 1
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM gateway_charges WHERE payment_id = $1", row["payment_id"]
        )
        == 1
    )
    await assert_audit_clean(pool)


async def test_error_before_charge_is_sent_again_until_the_window_closes_then_cancelled(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    buyer = uid("buyer-503")
    await fund_wallet(pool, buyer, 500, f"503:{buyer}")  # 5.00 of 15.00 from the wallet
    order = order_submitted(uid("ord-503"), buyer, {"sku-tee": 1}, "wallet_first")
    wallet = f"buyer:{buyer}:wallet:EUR"
    before = await balances(pool, wallet)
    assert before == (500, 500, 0)
    # Every create for this payment answers 503 and charges nothing, re-sends included: the
    # gateway never receives it, so the order is cancelled once its window has closed.
    env = {"PAYFLOW_SIM_FAULTS": "error_before_charge=1"}
    async with pipeline(services, pool, producer, env, payment_window_s=8):
        await publish(producer, order)
        await reaches(pool, order.correlation_id, "cancelled")
    row = await payment(pool, order.correlation_id)
    assert row["status"] in ("expired", "voided")
    evidence = json.loads(row["evidence"])
    resends = [e["resend"] for e in evidence if "resend" in e]
    assert resends and all(r["status"] == 503 for r in resends)
    assert all(r["request"] == evidence[0]["request"] for r in resends)  # the same request
    reason = await pool.fetchval(
        "SELECT state_reason FROM orders WHERE order_id = $1", order.correlation_id
    )
    assert reason == "payment_window_expired"
    assert await balances(pool, wallet) == before  # the hold was released
    charges = await pool.fetchval(
        "SELECT count(*) FROM gateway_charges WHERE payment_id = $1", row["payment_id"]
    )
    assert charges == 0
    await assert_audit_clean(pool)


async def test_still_unknown_after_the_last_check_goes_to_manual_review(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    buyer = uid("buyer-down")
    order = order_submitted(uid("ord-down"), buyer, {"sku-tee": 1}, "gateway_only")
    # No gateway listens at all: every create and every query goes unanswered.
    async with pipeline(services, pool, producer, None):
        await publish(producer, order)
        await reaches(pool, order.correlation_id, "manual_review")
        tx_state = "manual_review"

        async def transaction_in_review() -> bool:
            found = await pool.fetchval(
                "SELECT status FROM transactions WHERE order_id = $1", order.correlation_id
            )
            return bool(found == tx_state)

        await eventually(transaction_in_review, 30, "settlement marks the transaction")
    row = await payment(pool, order.correlation_id)
    assert row["status"] == "manual_review"
    assert row["checks"] == 3
    assert "outcome unknown" in row["evidence"]
