"""The inbox: which events a consumer has already processed."""

import uuid
from collections.abc import Iterable

import asyncpg


async def seen(
    conn: asyncpg.Connection | asyncpg.Pool, consumer: str, event_ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT event_id FROM inbox WHERE consumer = $1 AND event_id = ANY($2::uuid[])",
        consumer,
        list(event_ids),
    )
    return {r["event_id"] for r in rows}


async def record(
    conn: asyncpg.Connection,
    consumer: str,
    event_id: uuid.UUID,
    topic: str,
    partition: int,
    offset: int,
) -> bool:
    """Mark processed; False when another delivery got there first (the caller rolls back)."""
    status = await conn.execute(
        """INSERT INTO inbox (consumer, event_id, topic, kafka_partition, kafka_offset)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
        consumer,
        event_id,
        topic,
        partition,
        offset,
    )
    return bool(status.endswith(" 1"))
