"""Publishing after the commit: every send is awaited until the broker has it."""

import asyncio
from collections.abc import Sequence

import asyncpg
from aiokafka import AIOKafkaProducer

from workers.runtime import outbox
from workers.runtime.outbox import Message


async def publish(
    producer: AIOKafkaProducer, pool: asyncpg.Pool, messages: Sequence[Message]
) -> None:
    # send() only queues: gather the delivery futures so a lost broker surfaces here,
    # before any offset is committed.
    futures = [
        await producer.send(m.topic, value=m.value, key=m.key, headers=list(m.headers))
        for m in messages
    ]
    await asyncio.gather(*futures)
    await outbox.mark_published(pool, [m.outbox_id for m in messages if m.outbox_id is not None])
