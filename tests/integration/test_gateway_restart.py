"""The gateway killed (-9) in the middle of a run and restarted a few seconds later, under the
whole pipeline (stages, webhook, sweeper in this process; the simulator as a process): every
order ends settled (charged exactly once) or cancelled (never charged: its request did not
reach the gateway, which the sweeper confirmed by asking), nothing stays frozen, and the audit
is clean.

Why: our idempotency key is the same on every try and the gateway keeps its keys on disk, so a
retry after the restart answers the first charge instead of making a second; requests that got
no answer are `unknown` and the sweeper asks, deciding on what the gateway says; callbacks the gateway had queued are sent after
its restart, and the webhook takes each once."""

import asyncio

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from infra.settings import Settings
from tests.support.gateway_edge import gateway_charges, payment, pipeline, simulator_up, uid
from tests.support.pipeline import (
    assert_audit_clean,
    eventually,
    order_state,
    order_submitted,
    publish,
    seed_catalogue,
    simulator,
)

pytestmark = pytest.mark.integration

ORDERS = 30


async def test_a_gateway_killed_mid_run_charges_once_and_strands_nothing(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    orders = [
        order_submitted(uid("ord-kill"), uid("buyer-kill"), {"sku-tee": 1}, "gateway_only")
        for _ in range(ORDERS)
    ]
    ids = [o.correlation_id for o in orders]
    # The sweeper's schedule outlasts the outage, so nothing goes to review while it is down.
    async with (
        pipeline(services, pool, producer, None, sweeper_schedule_s="1,2,4,8") as settings,
        simulator(settings) as children,
    ):
        await eventually(lambda: simulator_up(settings), 30, "simulator answering")
        for order in orders[: ORDERS // 2]:
            await publish(producer, order)

        async def some_requested() -> bool:
            n = await pool.fetchval(
                "SELECT count(*) FROM payment_requests WHERE order_id = ANY($1::text[])", ids
            )
            return bool(n >= 3)

        await eventually(some_requested, 60, "the first payments requested")
        children.kill()  # -9: no flush, answers in flight are lost
        for order in orders[ORDERS // 2 :]:
            await publish(producer, order)  # these meet a dead gateway
        await asyncio.sleep(3)
        children.start("test-gateway-simulator-restarted", "run", "gateway-simulator")
        await eventually(lambda: simulator_up(settings), 30, "simulator answering again")

        async def all_final() -> bool:
            n = await pool.fetchval(
                """SELECT count(*) FROM orders WHERE order_id = ANY($1::text[])
                   AND state IN ('settled', 'cancelled')""",
                ids,
            )
            return bool(n == ORDERS)

        await eventually(all_final, 120, "every order settled or cancelled")
        settled = 0
        for order_id in ids:
            row = await payment(pool, order_id)
            charged = await gateway_charges(settings, row["payment_id"])
            state = await order_state(pool, order_id)
            # Settled: charged exactly once, with the charge we hold. Cancelled: the request
            # never reached the gateway (asked after the restart), nothing charged.
            expected = [row["gateway_ref"]] if state == "settled" else []
            assert charged == expected, (order_id, state, charged)
            settled += state == "settled"
        assert settled >= 3  # those requested before the kill were charged and kept
    frozen = await pool.fetchval(
        "SELECT count(*) FROM fund_holds WHERE order_id = ANY($1::text[]) AND state = 'held'",
        ids,
    )
    assert frozen == 0
    await assert_audit_clean(pool)
