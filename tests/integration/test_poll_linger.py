"""A poll that brings a few records waits once for more (runtime/fetch.py, batch_linger_ms),
on the real Kafka: what came meanwhile joins the batch in offset order; a lone record (an
idle system) and a quarter of a batch or more are handed over without waiting."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from infra.services.kafka import delete_topics, ensure_topics
from infra.settings import Settings
from workers.runtime.fetch import Poller
from workers.runtime.kafka import Record

pytestmark = pytest.mark.integration

LONG_LINGER_S = 60.0  # a poll that waited this long would fail the test's own bound
BOUND_S = 20.0


@pytest.fixture
async def topic(services: Settings) -> AsyncIterator[str]:
    name = f"test-linger-{uuid.uuid4().hex[:10]}"
    await ensure_topics(services.kafka_bootstrap, {name: 1})
    yield name
    await delete_topics(services.kafka_bootstrap, [name])


async def _publish(services: Settings, topic: str, values: range) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=services.kafka_bootstrap)
    await producer.start()
    try:
        for n in values:
            await producer.send_and_wait(topic, str(n).encode())
    finally:
        await producer.stop()


async def _poller(services: Settings, topic: str, linger_s: float) -> Poller:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=services.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    consumer.assign([TopicPartition(topic, 0)])

    async def unreadable(tp: TopicPartition, offset: int, exc: BaseException) -> None:
        raise AssertionError(f"no record here is unreadable: {tp} {offset} {exc}")

    return Poller(consumer, {}, unreadable, "test", linger_s=linger_s, batch_max=200)


async def _poll_until(poller: Poller, at_least: int) -> list[Record]:
    got: list[Record] = []
    while len(got) < at_least:
        got.extend(await poller.poll())
    return got


def _values(records: list[Record]) -> list[int]:
    return [int(r.value) for r in records]


async def test_a_trickle_waits_once_and_takes_what_came_meanwhile(
    services: Settings, topic: str
) -> None:
    await _publish(services, topic, range(3))
    poller = await _poller(services, topic, linger_s=3.0)
    try:
        polled = asyncio.create_task(poller.poll())
        await _publish(services, topic, range(3, 8))  # well inside the three seconds
        got = await asyncio.wait_for(polled, BOUND_S)
    finally:
        await poller.consumer.stop()
    assert _values(got) == list(range(8))


@pytest.mark.parametrize("count", [1, 50], ids=["a lone record", "a quarter of a batch"])
async def test_handed_over_without_waiting(services: Settings, topic: str, count: int) -> None:
    await _publish(services, topic, range(count))
    poller = await _poller(services, topic, linger_s=LONG_LINGER_S)
    try:
        got = await asyncio.wait_for(_poll_until(poller, count), BOUND_S)
    finally:
        await poller.consumer.stop()
    assert _values(got) == list(range(count))
