"""A transient error (a lost connection) is retried with backoff and never becomes a
business failure or a dead letter; the event still has exactly one effect."""

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from contracts.envelope import Envelope
from infra.settings import Settings
from tests.support.pipeline import eventually, order_state, order_submitted, publish, seed_catalogue
from workers.order_build.step import OrderBuild
from workers.runtime.consumer import StageRunner
from workers.runtime.health import Health

pytestmark = pytest.mark.integration


class FlakyOrderBuild(OrderBuild):
    """Loses its connection twice before it works."""

    failures = 2
    batched = False  # one event at a time: `handle` is what fails

    async def handle(
        self, event: Envelope, tx: asyncpg.Connection, prepared: Any
    ) -> Sequence[Envelope]:
        if self.failures:
            self.failures -= 1
            raise ConnectionResetError("connection lost mid-batch")
        return await super().handle(event, tx, prepared)


async def test_transient_errors_are_retried_then_applied_once(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    order_id = f"flaky-{uuid.uuid4().hex[:8]}"
    await publish(
        producer,
        order_submitted(order_id, "buyer-flaky", {"sku-cap": 1}),
    )
    stage = FlakyOrderBuild()
    stop = asyncio.Event()
    task = asyncio.create_task(
        StageRunner(stage, services, pool, producer, Health("order_build")).run(stop)
    )

    async def built() -> bool:
        return await order_state(pool, order_id) == "built"

    try:
        await eventually(built, 60, "the order built after the retries")
    finally:
        stop.set()
        await task
    assert stage.failures == 0
    assert (
        await pool.fetchval("SELECT count(*) FROM dead_letters WHERE order_id = $1", order_id) == 0
    )
    assert (
        await pool.fetchval("SELECT count(*) FROM stock_holds WHERE order_id = $1", order_id) == 1
    )
