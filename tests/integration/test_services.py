"""The real services: up is idempotent, status sees them, topics get created once."""

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from infra.services import manager
from infra.services.kafka import ensure_topics, leaderless
from infra.settings import get_settings

pytestmark = pytest.mark.integration


def test_up_twice_reuses_everything() -> None:
    first = manager.up()
    assert [st.name for st in first] == ["kafka", "postgres", "redis"]
    assert all(st.up for st in first)
    pids = {st.name: st.detail.split(" (")[0] for st in first}
    second = manager.up()
    assert all(st.up and st.detail.endswith("(reused)") for st in second)
    assert {st.name: st.detail.split(" (")[0] for st in second} == pids


def test_status_reports_all_up() -> None:
    statuses = manager.status()
    assert {st.name for st in statuses} == {"kafka", "postgres", "redis"}
    assert all(st.up for st in statuses), [st.line() for st in statuses]
    assert manager.main_services("status") == 0


async def test_wait_ready() -> None:
    await manager.wait_ready(limit_s=30)


async def test_ensure_topics_creates_once_with_partitions() -> None:
    bootstrap = get_settings().kafka_bootstrap
    topic = f"it-services-{uuid.uuid4().hex[:10]}"
    assert await ensure_topics(bootstrap, {topic: 6}) == [topic]
    assert await ensure_topics(bootstrap, {topic: 6}) == []
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        assert len(described["partitions"]) == 6
        await admin.delete_topics([topic])
    finally:
        await admin.close()


async def test_ensure_topics_returns_once_every_topic_has_leaders_whoever_created_it() -> None:
    """Two processes start at once (as `payflow run` stages do): one creates the topics, the
    other finds them created. Each must return only once the broker answers for every
    partition. Before, the second returned at once, while the broker often answered "unknown
    topic" for them (4 of 10 tries here)."""
    bootstrap = get_settings().kafka_bootstrap
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for _ in range(5):
            names = {f"it-leaders-{uuid.uuid4().hex[:10]}-{i}": 6 for i in range(12)}

            async def second(names: dict[str, int]) -> tuple[list[str], list[str]]:
                await asyncio.sleep(0.05)
                created = await ensure_topics(bootstrap, names)
                return created, leaderless(await admin.describe_topics(sorted(names)))

            first, (then, unusable) = await asyncio.gather(
                ensure_topics(bootstrap, names), second(names)
            )
            assert unusable == []
            assert sorted(first + then) == sorted(names)  # each created once, by one of them
            await admin.delete_topics(sorted(names))
    finally:
        await admin.close()
