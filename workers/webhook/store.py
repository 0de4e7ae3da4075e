"""The webhook's SQL: a receipt per accepted callback (written in groups, receipts.py), a row per refused one, and their
pruning past the retention."""

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class Receipt:
    """An accepted callback to record and publish; `event` is its encoded event."""

    provider: str
    callback_id: str
    event_id: uuid.UUID
    payment_id: str
    key_id: str
    timestamp: int
    received_at: datetime
    body_digest: str
    event: bytes


async def insert_receipts(conn: asyncpg.Connection, receipts: list[Receipt]) -> set[uuid.UUID]:
    """The event ids of the receipts inserted: the others' (provider, callback_id) was accepted
    before. A concurrent insert of the same pair waits on this row's unique entry until this
    transaction ends, then finds it (commit) or takes its place (rollback)."""
    if not receipts:
        return set()
    rows = await conn.fetch(
        """INSERT INTO webhook_receipts (provider, callback_id, event_id, payment_id, key_id,
               signed_at, received_at, body_digest)
           SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::text[],
                                $6::bigint[], $7::timestamptz[], $8::text[])
           ON CONFLICT (provider, callback_id) DO NOTHING RETURNING event_id""",
        [r.provider for r in receipts],
        [r.callback_id for r in receipts],
        [r.event_id for r in receipts],
        [r.payment_id for r in receipts],
        [r.key_id for r in receipts],
        [r.timestamp for r in receipts],
        [r.received_at for r in receipts],
        [r.body_digest for r in receipts],
    )
    return {row["event_id"] for row in rows}


async def accepted_before(
    conn: asyncpg.Connection, provider: str, callback_id: str, body_digest: str
) -> uuid.UUID | None:
    """The event id this very callback (same id, same body) was accepted as, if it was."""
    found: uuid.UUID | None = await conn.fetchval(
        """SELECT event_id FROM webhook_receipts
           WHERE provider = $1 AND callback_id = $2 AND body_digest = $3""",
        provider,
        callback_id,
        body_digest,
    )
    return found


@dataclass(frozen=True)
class RejectedCallback:
    provider: str
    reason_code: str
    detail: str
    key_id: str | None
    timestamp_header: str | None
    remote_addr: str | None
    body: bytes  # as received, cut at the size limit
    received_at: datetime


async def record_rejection(pool: asyncpg.Pool, r: RejectedCallback) -> None:
    # Header values and the provider come from outside: text columns cannot hold NUL.
    await pool.execute(
        """INSERT INTO webhook_rejections (provider, reason_code, detail, key_id,
               timestamp_header, remote_addr, body, received_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        _text(r.provider),
        r.reason_code,
        _text(r.detail),
        _text(r.key_id),
        _text(r.timestamp_header),
        r.remote_addr,
        r.body,
        r.received_at,
    )


def _text(value: str | None, limit: int = 500) -> str | None:
    return None if value is None else value.replace("\x00", "\\x00")[:limit]


PRUNE_BATCH = 500
# What ages each table out, and the index that finds the old rows (0010, 0015): a receipt by
# its signed timestamp (Unix seconds), a rejection by when it came.
_AGE = {"webhook_receipts": "signed_at", "webhook_rejections": "received_at"}


async def prune_receipts(pool: asyncpg.Pool, signed_before: int) -> int:
    """Forget up to PRUNE_BATCH receipts signed before `signed_before`."""
    return await _prune(pool, "webhook_receipts", signed_before)


async def prune_rejections(pool: asyncpg.Pool, received_before: datetime) -> int:
    """Forget up to PRUNE_BATCH refused callbacks received before `received_before`."""
    return await _prune(pool, "webhook_rejections", received_before)


async def _prune(pool: asyncpg.Pool, table: str, before: int | datetime) -> int:
    """One batch in its own short transaction; rows another transaction holds are skipped,
    so pruning never waits for the webhook and is never waited for long."""
    column = _AGE[table]  # never text from outside
    status = await pool.execute(
        f"""DELETE FROM {table} WHERE ctid IN (
               SELECT ctid FROM {table} WHERE {column} < $1
               LIMIT $2 FOR UPDATE SKIP LOCKED)""",
        before,
        PRUNE_BATCH,
    )
    return int(status.split()[-1])
