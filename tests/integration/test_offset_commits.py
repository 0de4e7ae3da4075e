"""A busy stage commits its offsets at most once per interval, and exactly once caught up
(workers/runtime/offsets.py): each commit costs the broker about a millisecond of CPU.

What the interval risks is only the commit: a stage that dies with processed offsets not yet
committed has them redelivered, and the inbox answers them from the outbox without a second
effect (tests/integration/test_crash_recovery.py, `after_publish`). A stop commits first
(tests/integration/test_graceful_stop.py).
"""

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from infra.settings import Settings
from tests.support.pipeline import (
    committed_lag,
    eventually,
    order_state,
    order_submitted,
    publish,
    seed_catalogue,
)
from workers.order_build.step import OrderBuild
from workers.runtime.consumer import StageRunner
from workers.runtime.health import Health

pytestmark = pytest.mark.integration
ORDERS = 24
BATCH = 4  # so the orders take at least six batches


@pytest.mark.parametrize(("interval_ms", "most", "least"), [(0, None, 6), (60_000, 2, 1)])
async def test_commits_follow_the_interval_and_catch_up_exactly(
    services: Settings,
    pool: asyncpg.Pool,
    producer: AIOKafkaProducer,
    monkeypatch: pytest.MonkeyPatch,
    interval_ms: int,
    most: int | None,
    least: int,
) -> None:
    await seed_catalogue(pool)
    commits: list[dict[TopicPartition, int]] = []
    real_commit = AIOKafkaConsumer.commit

    async def counted(self: AIOKafkaConsumer, offsets: Any = None) -> None:
        commits.append(dict(offsets or {}))
        await real_commit(self, offsets)

    monkeypatch.setattr(AIOKafkaConsumer, "commit", counted)
    run = uuid.uuid4().hex[:6]
    order_ids = [f"ci-{run}-{i:02d}" for i in range(ORDERS)]
    for order_id in order_ids:  # all waiting before the stage starts: full batches
        await publish(producer, order_submitted(order_id, f"buyer-ci-{run}", {"sku-mug": 1}))
    assert await committed_lag(services) >= ORDERS  # what the stage has to catch up on
    settings = services.model_copy(
        update={"commit_interval_ms": interval_ms, "batch_max_records": BATCH}
    )
    stop = asyncio.Event()
    task = asyncio.create_task(
        StageRunner(OrderBuild(), settings, pool, producer, Health("order_build")).run(stop)
    )

    async def all_built() -> bool:
        return all([await order_state(pool, o) == "built" for o in order_ids])

    async def caught_up() -> bool:
        return await committed_lag(services) == 0

    try:
        await eventually(all_built, 60, "every order built")
        # Caught up: the next empty poll commits what was processed, whatever the interval.
        await eventually(caught_up, 30, "the group's offsets at the end of the topic")
        while_running = len(commits)
    finally:
        stop.set()
        await task
    assert while_running >= least
    if most is not None:  # one commit when caught up (two if a poll came back empty early)
        assert while_running <= most, commits
