"""The webhook's SQL: a receipt per accepted callback, a row per refused one."""

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg


async def insert_receipt(
    conn: asyncpg.Connection,
    provider: str,
    callback_id: str,
    event_id: uuid.UUID,
    payment_id: str,
    key_id: str,
    timestamp: int,
    received_at: datetime,
) -> bool:
    """False when (provider, callback_id) was accepted before. A concurrent insert of the same
    pair waits on this row's unique entry until this transaction ends, then finds it (commit)
    or takes its place (rollback)."""
    inserted = await conn.fetchval(
        """INSERT INTO webhook_receipts (provider, callback_id, event_id, payment_id, key_id,
               signed_at, received_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (provider, callback_id) DO NOTHING RETURNING true""",
        provider,
        callback_id,
        event_id,
        payment_id,
        key_id,
        timestamp,
        received_at,
    )
    return bool(inserted)


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
