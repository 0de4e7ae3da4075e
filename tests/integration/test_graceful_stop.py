"""SIGTERM: the worker finishes its batch, commits its offsets and leaves its group, so a
successor starts exactly after what was processed."""

import asyncio
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from infra.settings import Settings
from tests.support.pipeline import (
    committed_lag,
    eventually,
    fund_wallet,
    order_state,
    order_submitted,
    publish,
    seed_catalogue,
    simulator,
    start_workers,
)

pytestmark = pytest.mark.integration


async def test_sigterm_commits_and_leaves_cleanly(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    buyer = f"buyer-stop-{uuid.uuid4().hex[:6]}"
    await fund_wallet(pool, buyer, 20_000, f"stop-topup:{buyer}")
    order_ids = [f"stop-{uuid.uuid4().hex[:8]}" for _ in range(10)]
    async with simulator(services) as children:
        start_workers(children)
        for order_id in order_ids:
            await publish(
                producer,
                order_submitted(order_id, buyer, {"sku-mug": 1}),
            )

        async def all_settled() -> bool:
            states = [await order_state(pool, o) for o in order_ids]
            return all(s == "settled" for s in states)

        await eventually(all_settled, 60, "every order settled")
        workers = children.procs[-1]
        await children.stop()
        assert workers.returncode == 0
    assert await asyncio.wait_for(committed_lag(services), 30) == 0
