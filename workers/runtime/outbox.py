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


# A batch's rows in the order given; each path adds what it does on a conflict.
_INSERT = """INSERT INTO outbox (producer, cause_event_id, event_id, topic, message_key,
                                 message_value)
             SELECT $1, c, e, t, k, v
               FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::bytea[])
                    WITH ORDINALITY AS u(c, e, t, k, v, n)
              ORDER BY n"""


async def store(
    conn: asyncpg.Connection, producer: str, cause: uuid.UUID | None, events: Sequence[Envelope]
) -> list[Message]:
    return await store_many(conn, producer, [(cause, events)])


async def store_many(
    conn: asyncpg.Connection,
    producer: str,
    outputs: Sequence[tuple[uuid.UUID | None, Sequence[Envelope]]],
    *,
    tracked: bool = True,
) -> list[Message]:
    """Store every output of a batch in one statement; `outputs` pairs each cause with the
    events it produced. An event id stored before (a redelivered cause whose output id is
    derived from it) keeps its row: the same message is published again.

    `tracked=False` is a stage's batch: its rows are owed until the stage commits their
    causes' offsets, and Kafka redelivers a cause until then (the inbox then answers it from
    here, `stored_for`), so they need neither a pending row nor a publish mark: written
    once, and marked only if a redelivery publishes them again. A producer without an input
    topic (the sweeper, an operator's command) keeps the default: its rows are owed while
    they have a pending row."""
    rows: dict[uuid.UUID, tuple[uuid.UUID | None, str, str, bytes]] = {}
    for cause, events in outputs:
        for event in events:
            if event.event_id not in rows:  # one row per event id, even if two causes agree
                topic = topic_for(type(event)).name
                rows[event.event_id] = (cause, topic, event.correlation_id, encode(event))
    if not rows:
        return []
    columns = (
        producer,
        [r[0] for r in rows.values()],
        list(rows),
        [r[1] for r in rows.values()],
        [r[2] for r in rows.values()],
        [r[3] for r in rows.values()],
    )
    if not tracked:
        await conn.execute(
            _INSERT + " ON CONFLICT (event_id) DO NOTHING",
            *columns,
        )
        return [Message(topic, key.encode(), value) for _, topic, key, value in rows.values()]
    # The rows still owed to Kafka are also written to outbox_pending, which the relay
    # searches (migration 0022); a row stored before and already published is not owed.
    got = await conn.fetch(
        "WITH stored AS ("
        + _INSERT
        + """ ON CONFLICT (event_id) DO UPDATE SET event_id = EXCLUDED.event_id
               RETURNING event_id, outbox_id, created_at, published_at
           ), owed AS (
               INSERT INTO outbox_pending (outbox_id, created_at)
               SELECT outbox_id, created_at FROM stored WHERE published_at IS NULL
               ON CONFLICT (outbox_id) DO NOTHING
           )
           SELECT event_id, outbox_id FROM stored""",
        *columns,
    )
    ids = {r["event_id"]: r["outbox_id"] for r in got}
    return [
        Message(topic, key.encode(), value, (), ids[event_id])
        for event_id, (_, topic, key, value) in rows.items()
    ]


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
    return [message_of(r) for r in rows]


async def unpublished(
    conn: asyncpg.Connection, producer: str, older_than_s: float, limit: int
) -> list[Message]:
    """This producer's rows still owed to Kafka (it died, or Kafka failed, between commit
    and publish), older than `older_than_s`: found through outbox_pending (migration 0022)."""
    rows = await conn.fetch(
        """SELECT o.outbox_id, o.topic, o.message_key, o.message_value
             FROM outbox_pending p JOIN outbox o USING (outbox_id)
            WHERE o.producer = $1 AND o.published_at IS NULL
              AND p.created_at < now() - make_interval(secs => $2)
            ORDER BY p.outbox_id LIMIT $3""",
        producer,
        older_than_s,
        limit,
    )
    return [message_of(r) for r in rows]


def message_of(row: asyncpg.Record) -> Message:
    """A stored row (outbox_id, topic, message_key, message_value) as the message to send."""
    return Message(
        row["topic"], row["message_key"].encode(), bytes(row["message_value"]), (), row["outbox_id"]
    )


async def mark_published(conn: asyncpg.Connection | asyncpg.Pool, ids: list[int]) -> None:
    """No longer owed: a HOT update of published_at (no index reads it) and the pending rows
    deleted, in one statement."""
    if ids:
        await conn.execute(
            """WITH sent AS (DELETE FROM outbox_pending WHERE outbox_id = ANY($1::bigint[]))
               UPDATE outbox SET published_at = now()
                WHERE outbox_id = ANY($1::bigint[]) AND published_at IS NULL""",
            ids,
        )
