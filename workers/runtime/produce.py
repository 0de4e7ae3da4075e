"""Handing many messages to the producer at once: one record batch per partition.

`producer.send()` costs about 32 us of CPU per message (a coroutine, the partitioner, the
accumulator and a future each); filling one batch per partition and handing it over with
`send_batch` costs about 12 (1 KB values, docs/performance.md). A message goes to the
partition `send()` would choose (murmur2 of the key over all the topic's partitions, as the
Java client does), so a key keeps its partition however it was sent, and the messages of
one partition are queued in the order given.
"""

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from workers.runtime.outbox import Message

_choose = DefaultPartitioner()


async def send_all(producer: AIOKafkaProducer, messages: Sequence[Message]) -> list[Any]:
    """Queue every message; returns the futures that resolve once the broker has them
    (await them all before committing anything that depends on the send)."""
    futures: list[Any] = []
    filling: dict[tuple[str, int], Any] = {}  # (topic, partition) -> BatchBuilder
    partitions: dict[str, list[int]] = {}

    async def hand_over(topic: str, partition: int) -> None:
        batch = filling.pop((topic, partition), None)
        if batch is not None and batch.record_count():
            futures.append(await producer.send_batch(batch, topic, partition=partition))

    for m in messages:
        if (every := partitions.get(m.topic)) is None:
            every = partitions[m.topic] = sorted(await producer.partitions_for(m.topic))
        partition = _choose(m.key, every, every)
        where = (m.topic, partition)
        headers = list(m.headers)
        batch = filling.get(where)
        if batch is None or not _added(batch, m, headers):
            await hand_over(*where)  # full: what it holds goes first
            batch = filling[where] = producer.create_batch()
            _added(batch, m, headers)  # an empty batch takes any one message, however large
    for topic, partition in list(filling):
        await hand_over(topic, partition)
    return futures


def _added(batch: Any, m: Message, headers: list[tuple[str, bytes | None]]) -> bool:
    return batch.append(key=m.key, value=m.value, timestamp=None, headers=headers) is not None


async def deliver_all(producer: AIOKafkaProducer, messages: Sequence[Message]) -> None:
    """`send_all`, then wait until the broker has every message (a lost broker raises)."""
    await asyncio.gather(*await send_all(producer, messages))
