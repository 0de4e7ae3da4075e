"""The sweeper finds a payment whose callback never came (pending past the grace), asks the
gateway, and settles it through the same decision path as a callback; a second sweeper
replica never makes the same check. A payment the gateway never received is sent again
(same key) while its window is open (the real simulator over HTTP, real Kafka/Postgres)."""

import asyncio
import json

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from infra.settings import Settings
from tests.support.gateway_edge import payment, pipeline, reaches, simulator_up, uid
from tests.support.pipeline import (
    assert_audit_clean,
    eventually,
    order_submitted,
    publish,
    seed_catalogue,
    simulator,
)
from workers.sweeper.serve import serve as sweeper

pytestmark = pytest.mark.integration


async def test_a_lost_callback_is_found_by_the_sweeper_and_settled(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    orders = [
        order_submitted(uid("ord-lost"), uid("buyer-lost"), {"sku-tee": 1}, "gateway_only")
        for _ in range(3)
    ]
    env = {"PAYFLOW_SIM_FAULTS": "lost_callback=1"}
    async with pipeline(services, pool, producer, env, callback_grace_s=2) as settings:
        stop = asyncio.Event()
        second = asyncio.create_task(sweeper(settings, stop))  # another replica
        try:
            for order in orders:
                await publish(producer, order)
            for order in orders:
                await reaches(pool, order.correlation_id, "settled")
        finally:
            stop.set()
            await second
    for order in orders:
        row = await payment(pool, order.correlation_id)
        assert row["status"] == "succeeded" and row["checks"] == 1
        source = await pool.fetchval(
            "SELECT source FROM gateway_charges WHERE payment_id = $1", row["payment_id"]
        )
        assert source == "sync"
        tasks = await pool.fetch(
            "SELECT task_key, result FROM sweeper_tasks WHERE payment_id = $1", row["payment_id"]
        )
        assert [(t["task_key"], t["result"]) for t in tasks] == [
            (f"sync:{row['payment_id']}:1", "succeeded")
        ]
    await assert_audit_clean(pool)


async def test_a_payment_the_gateway_never_received_is_sent_again_and_settled(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    order = order_submitted(uid("ord-resend"), uid("buyer-resend"), {"sku-tee": 1}, "gateway_only")
    # No gateway listens while the order asks to be paid: the create call never arrives.
    async with pipeline(services, pool, producer, None, sweeping=False) as settings:
        await publish(producer, order)

        async def unknown() -> bool:
            row = await payment(pool, order.correlation_id)
            return row is not None and row["status"] == "unknown"

        await eventually(unknown, 30, "the payment recorded unknown")
        # The gateway is back, its window still open: the sweeper finds nothing there and
        # sends the same request again.
        async with simulator(settings, {}):
            await eventually(lambda: simulator_up(settings), 30, "simulator answering")
            stop = asyncio.Event()
            sweeping = asyncio.create_task(sweeper(settings, stop))
            try:
                await reaches(pool, order.correlation_id, "settled")
            finally:
                stop.set()
                await sweeping
    row = await payment(pool, order.correlation_id)
    assert row["status"] == "succeeded" and row["gateway_ref"]
    evidence = json.loads(row["evidence"])
    resends = [e["resend"] for e in evidence if "resend" in e]
    assert [r["note"] for r in resends] == ["resend created: pending"]
    # Byte for byte the request first sent (same key, same parameters): never a second charge.
    assert evidence[0]["request"].startswith("POST") and evidence[0]["status"] is None
    assert resends[0]["request"] == evidence[0]["request"]
    assert f"Idempotency-Key: {row['idempotency_key']}" in resends[0]["request"]
    assert any(e.get("result") == "resent" for e in evidence)
    charges = await pool.fetchval(
        "SELECT count(*) FROM gateway_charges WHERE payment_id = $1", row["payment_id"]
    )
    assert charges == 1
    await assert_audit_clean(pool)
