"""The outbox: events a step decided to publish, stored with the state change."""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg

from contracts.codec import encode
from contracts.envelope import Envelope
from contracts.topics import topic_for


@dataclass(frozen=True)
class Message:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    outbox_id: int | None = None


async def store(
    conn: asyncpg.Connection, producer: str, cause: uuid.UUID | None, events: Sequence[Envelope]
) -> list[Message]:
    messages = []
    for event in events:
        topic = topic_for(type(event)).name
        value = encode(event)
        outbox_id = await conn.fetchval(
            """INSERT INTO outbox (producer, cause_event_id, event_id, topic, message_key,
                                   message_value)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (event_id) DO UPDATE SET event_id = EXCLUDED.event_id
               RETURNING outbox_id""",
            producer,
            cause,
            event.event_id,
            topic,
            event.correlation_id,
            value,
        )
        messages.append(Message(topic, event.correlation_id.encode(), value, (), outbox_id))
    return messages


async def stored_for(
    conn: asyncpg.Connection, producer: str, causes: Iterable[uuid.UUID]
) -> list[Message]:
    """What was stored for already-processed events, to publish again (the process may have
    died after the commit and before the publish)."""
    rows = await conn.fetch(
        """SELECT outbox_id, topic, message_key, message_value FROM outbox
           WHERE producer = $1 AND cause_event_id = ANY($2::uuid[]) ORDER BY outbox_id""",
        producer,
        list(causes),
    )
    return [
        Message(
            r["topic"], r["message_key"].encode(), bytes(r["message_value"]), (), r["outbox_id"]
        )
        for r in rows
    ]


async def unpublished(conn: asyncpg.Connection, older_than_s: float, limit: int) -> list[Message]:
    rows = await conn.fetch(
        """SELECT outbox_id, topic, message_key, message_value FROM outbox
           WHERE published_at IS NULL AND created_at < now() - make_interval(secs => $1)
           ORDER BY outbox_id LIMIT $2""",
        older_than_s,
        limit,
    )
    return [
        Message(
            r["topic"], r["message_key"].encode(), bytes(r["message_value"]), (), r["outbox_id"]
        )
        for r in rows
    ]


async def mark_published(conn: asyncpg.Connection | asyncpg.Pool, ids: list[int]) -> None:
    if ids:
        await conn.execute(
            "UPDATE outbox SET published_at = now() WHERE outbox_id = ANY($1::bigint[])"
            " AND published_at IS NULL",
            ids,
        )
