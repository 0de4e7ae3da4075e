"""Publishing after the commit: every send is awaited until the broker has it."""

from collections.abc import Sequence

import asyncpg
from aiokafka import AIOKafkaProducer

from workers.runtime import outbox
from workers.runtime.outbox import Message
from workers.runtime.produce import deliver_all


async def publish(
    producer: AIOKafkaProducer, pool: asyncpg.Pool, messages: Sequence[Message]
) -> None:
    # Delivered before the outbox rows are marked and before any offset is committed: a
    # lost broker surfaces here.
    await deliver_all(producer, messages)
    await outbox.mark_published(pool, [m.outbox_id for m in messages if m.outbox_id is not None])
