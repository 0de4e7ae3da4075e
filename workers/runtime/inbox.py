"""The inbox: which events a consumer has already processed."""

import uuid
from collections.abc import Iterable, Sequence

import asyncpg

from contracts.envelope import Envelope
from workers.runtime.kafka import Record


async def seen(
    conn: asyncpg.Connection | asyncpg.Pool, consumer: str, event_ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT event_id FROM inbox WHERE consumer = $1 AND event_id = ANY($2::uuid[])",
        consumer,
        list(event_ids),
    )
    return {r["event_id"] for r in rows}


_INSERT = """INSERT INTO inbox (consumer, event_id, topic, kafka_partition, kafka_offset)
             SELECT $1, e, t, p, o
               FROM unnest($2::uuid[], $3::text[], $4::int[], $5::bigint[]) AS u(e, t, p, o)"""


class SeenBefore(Exception):
    """A plain insert met an event this consumer recorded before: its transaction is
    aborted, and the batch runs again with `record_many(..., new=False)`."""


async def record_many(
    conn: asyncpg.Connection,
    consumer: str,
    events: Sequence[tuple[Record, Envelope]],
    *,
    new: bool = False,
) -> set[uuid.UUID]:
    """Mark processed in one statement; returns the ids that are ours to apply. An id
    missing from the answer was committed by another delivery first (a rebalance): its
    effect is already there.

    `new=True` is the usual batch, none of whose events was seen before: a plain insert,
    about 6 us of Postgres CPU per row cheaper than a speculative one (ON CONFLICT), which
    the rare redelivery pays for instead: `SeenBefore`, raised by the transaction's first
    statement, so that nothing else is undone."""
    if not events:
        return set()
    ids = [ev.event_id for _, ev in events]
    columns = (
        consumer,
        ids,
        [rec.topic for rec, _ in events],
        [rec.partition for rec, _ in events],
        [rec.offset for rec, _ in events],
    )
    if new:
        try:
            await conn.execute(_INSERT, *columns)
        except asyncpg.UniqueViolationError as exc:
            raise SeenBefore(str(exc)) from exc
        return set(ids)
    rows = await conn.fetch(_INSERT + " ON CONFLICT DO NOTHING RETURNING event_id", *columns)
    return {r["event_id"] for r in rows}
