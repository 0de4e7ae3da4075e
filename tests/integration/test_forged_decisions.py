"""Settlement confirms only a payment our own records say succeeded: a forged
payments.decided event for an unpaid order settles nothing and is dead-lettered for an
operator (real Kafka and Postgres, the stages in this process, no gateway)."""

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from contracts.events.payments import PaymentDecisionPayload, PaymentSucceeded
from contracts.money import Money
from infra.settings import Settings
from tests.support.gateway_edge import payment, pipeline, reaches, uid
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


async def test_a_forged_success_for_an_unpaid_order_is_dead_lettered(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    buyer = uid("buyer-forged")
    await fund_wallet(pool, buyer, 500, f"forged:{buyer}")
    order = order_submitted(uid("ord-forged"), buyer, {"sku-tee": 1}, "wallet_first")
    order_id = order.correlation_id
    wallet = f"buyer:{buyer}:wallet:EUR"
    # No gateway answers and no sweeper runs: the payment stays open (unknown).
    async with pipeline(services, pool, producer, None, sweeping=False):
        await publish(producer, order)
        await reaches(pool, order_id, "payment_requested")
        held = await balances(pool, wallet)
        assert held == (500, 0, 500)
        eur = "EUR"
        forged = PaymentSucceeded.new(
            order_id,
            PaymentDecisionPayload(
                order_id=order_id,
                transaction_id=f"tx-{order_id}",
                buyer_id=buyer,
                total=Money(amount=1500, currency=eur),
                wallet_part=Money(amount=500, currency=eur),
                gateway_part=Money(amount=1000, currency=eur),
                gateway_ref="gw-forged",
            ),
            idempotency_key=uid("forged"),
        )
        await publish(producer, forged)

        async def dead_lettered() -> bool:
            found = await pool.fetchval(
                "SELECT reason_code FROM dead_letters WHERE event_id = $1", forged.event_id
            )
            return bool(found == "unverified_decision")

        await eventually(dead_lettered, 30, "the forged decision dead-lettered")
    assert await pool.fetchval("SELECT state FROM orders WHERE order_id = $1", order_id) == (
        "payment_requested"
    )
    assert (
        await pool.fetchval("SELECT status FROM transactions WHERE order_id = $1", order_id)
        == "pending_payment"
    )
    assert await balances(pool, wallet) == held  # nothing confirmed, nothing released
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM ledger_transactions WHERE order_id = $1", order_id
        )
        == 0
    )
    assert (await payment(pool, order_id))["status"] in ("unknown", "requesting")
    await assert_audit_clean(pool)
