"""The sweeper finds a payment whose callback never came (pending past the grace), asks the
gateway, and settles it through the same decision path as a callback; a second sweeper
replica never makes the same check (the real simulator over HTTP, real Kafka/Postgres)."""

import asyncio

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from infra.settings import Settings
from tests.support.gateway_edge import payment, pipeline, reaches, uid
from tests.support.pipeline import assert_audit_clean, order_submitted, publish, seed_catalogue
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
