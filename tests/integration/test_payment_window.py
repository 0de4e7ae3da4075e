"""The payment window: a redirect (QR) payment the buyer never pays is cancelled after the
window through TCC Cancel, its holds released, and its trade closed at the gateway (the real
simulator over HTTP, real Kafka and Postgres)."""

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from infra.settings import Settings
from tests.support.gateway_edge import (
    payment,
    pipeline,
    reaches,
    uid,
    with_method,
)
from tests.support.pipeline import (
    assert_audit_clean,
    balances,
    eventually,
    fund_wallet,
    order_submitted,
    publish,
    seed_catalogue,
)
from workers.gateway.registry import Gateways

pytestmark = pytest.mark.integration


async def test_an_unpaid_redirect_payment_is_cancelled_after_the_window(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    buyer = uid("buyer-window")
    await fund_wallet(pool, buyer, 500, f"window:{buyer}")
    order = with_method(order_submitted(uid("ord-window"), buyer, {"sku-tee": 1}), "qr")
    order_id = order.correlation_id
    wallet = f"buyer:{buyer}:wallet:EUR"
    # The simulated buyer would pay only after ten minutes: the window closes first.
    env = {"PAYFLOW_SIM_CALLBACK_DELAY_MS": "600000"}
    async with pipeline(
        services, pool, producer, env, payment_window_s=4, callback_grace_s=60
    ) as settings:
        await publish(producer, order)
        await reaches(pool, order_id, "payment_requested")
        row = await payment(pool, order_id)
        assert row["adapter"] == "redirect" and row["pay_url"]
        assert await balances(pool, wallet) == (500, 0, 500)
        await reaches(pool, order_id, "cancelled")

        async def voided() -> bool:
            return bool((await payment(pool, order_id))["status"] == "voided")

        await eventually(voided, 30, "the trade voided at the gateway")
        async with aiohttp.ClientSession() as http:
            [trade] = (
                await Gateways(settings, http).adapter("redirect").query_payment(row["payment_id"])
            )
        assert trade.status == "voided"
    reason = await pool.fetchval("SELECT state_reason FROM orders WHERE order_id = $1", order_id)
    assert reason == "payment_window_expired"
    assert await balances(pool, wallet) == (500, 500, 0)  # the wallet hold released
    stock = await pool.fetchval(
        "SELECT count(*) FROM stock_holds WHERE order_id = $1 AND state = 'held'", order_id
    )
    assert stock == 0
    await assert_audit_clean(pool)


async def test_an_order_never_sent_to_the_gateway_and_an_expired_hold_are_cancelled(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    buyer = uid("buyer-stuck")
    await fund_wallet(pool, buyer, 1_000, f"stuck:{buyer}")
    # gateway_request is not running: the orders stay funds_frozen with no payment request.
    stuck = order_submitted(uid("ord-stuck"), buyer, {"sku-tee": 1}, "gateway_only")
    held = order_submitted(uid("ord-held"), buyer, {"sku-tee": 1}, "wallet_first")
    wallet = f"buyer:{buyer}:wallet:EUR"
    async with pipeline(
        services, pool, producer, None, without=("gateway_request",), payment_window_s=3
    ):
        await publish(producer, stuck)
        await reaches(pool, stuck.correlation_id, "cancelled")
    assert await payment(pool, stuck.correlation_id) is None
    # A long window, but the wallet hold's own deadline passes: released the same way.
    async with pipeline(
        services, pool, producer, None, without=("gateway_request",), payment_window_s=600
    ):
        await publish(producer, held)
        await reaches(pool, held.correlation_id, "funds_frozen")
        assert await balances(pool, wallet) == (1_000, 0, 1_000)
        await pool.execute(
            "UPDATE fund_holds SET expires_at = now() WHERE order_id = $1", held.correlation_id
        )
        await reaches(pool, held.correlation_id, "cancelled")
    assert await balances(pool, wallet) == (1_000, 1_000, 0)
    for order in (stuck, held):
        reason = await pool.fetchval(
            "SELECT state_reason FROM orders WHERE order_id = $1", order.correlation_id
        )
        assert reason == "payment_window_expired"
    await assert_audit_clean(pool)


async def test_a_charge_that_succeeded_unannounced_before_the_window_closed_is_refunded(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    order = order_submitted(uid("ord-paid-late"), uid("buyer-late"), {"sku-tee": 1}, "gateway_only")
    order_id = order.correlation_id
    # The charge succeeds at once but its callback is lost, and the callback grace outlasts
    # the window: the void pass finds the success, which is refunded, never kept.
    env = {"PAYFLOW_SIM_FAULTS": "lost_callback=1"}
    async with pipeline(services, pool, producer, env, payment_window_s=3, callback_grace_s=60):
        await publish(producer, order)
        await reaches(pool, order_id, "cancelled")
        payment_id = (await payment(pool, order_id))["payment_id"]

        async def refunded() -> bool:
            status = await pool.fetchval(
                "SELECT status FROM gateway_refunds WHERE payment_id = $1", payment_id
            )
            # Its callback is lost too (the payment's faults): sent is what we can see here.
            return status in ("pending", "succeeded")

        await eventually(refunded, 30, "the late success refunded through the gateway")
    row = await payment(pool, order_id)
    assert row["status"] == "expired"
    assert (
        await pool.fetchval("SELECT reason FROM gateway_refunds WHERE payment_id = $1", payment_id)
        == "late_success"
    )
    await assert_audit_clean(pool)
