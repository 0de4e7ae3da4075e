"""Wallet operations, their gateway charges (top-ups) and payouts (withdrawals)."""

import hashlib

import asyncpg

from contracts.events.wallet import TopUpRequestedPayload, WithdrawalRequestedPayload
from workers.gateway.port import Exchange
from workers.runtime.errors import PermanentError

Request = TopUpRequestedPayload | WithdrawalRequestedPayload


def digest(request: Request) -> str:
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


async def record_operation(
    conn: asyncpg.Connection | asyncpg.Pool, kind: str, request: Request
) -> str:
    """Insert once; return the operation's status. The same id with other content is refused."""
    mine = digest(request)
    destination = getattr(request, "destination", None)
    await conn.execute(
        """INSERT INTO wallet_operations (operation_id, kind, buyer_id, currency, amount,
               destination, request_digest, status)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 'requested') ON CONFLICT DO NOTHING""",
        request.operation_id,
        kind,
        request.buyer_id,
        request.amount.currency,
        request.amount.amount,
        destination,
        mine,
    )
    row = await conn.fetchrow(
        "SELECT request_digest, status FROM wallet_operations WHERE operation_id = $1",
        request.operation_id,
    )
    assert row is not None
    if row["request_digest"] != mine:
        raise PermanentError(
            "operation_id_reused",
            f"wallet operation {request.operation_id} exists with other content",
        )
    return str(row["status"])


async def move(
    conn: asyncpg.Connection,
    operation_id: str,
    to: str,
    from_: tuple[str, ...],
    reason: str | None = None,
) -> bool:
    """Forward only: False when the operation was not in one of `from_` (already moved)."""
    status = await conn.execute(
        """UPDATE wallet_operations SET status = $2, status_reason = coalesce($4, status_reason),
               updated_at = now()
           WHERE operation_id = $1 AND status = ANY($3::text[])""",
        operation_id,
        to,
        list(from_),
        reason,
    )
    return bool(status == "UPDATE 1")


async def record_top_up_charge(
    pool: asyncpg.Pool,
    payment_id: str,
    request: TopUpRequestedPayload,
    key: str,
    body: str,
    adapter: str,
) -> None:
    # Recorded before the call, so the gateway's callback always finds it; `adapter` says
    # which gateway to ask about it later.
    await pool.execute(
        """INSERT INTO payment_requests (payment_id, wallet_operation_id, attempt,
               idempotency_key, currency, amount, status, request_body, adapter)
           VALUES ($1, $2, 1, $3, $4, $5, 'requesting', $6, $7) ON CONFLICT DO NOTHING""",
        payment_id,
        request.operation_id,
        key,
        request.amount.currency,
        request.amount.amount,
        body,
        adapter,
    )


async def record_payout_request(pool: asyncpg.Pool, operation_id: str, key: str, body: str) -> None:
    await pool.execute(
        """INSERT INTO payouts (operation_id, idempotency_key, request_body)
           VALUES ($1, $2, $3) ON CONFLICT DO NOTHING""",
        operation_id,
        key,
        body,
    )


async def record_payout_reply(
    conn: asyncpg.Connection, operation_id: str, exchange: Exchange
) -> None:
    await conn.execute(
        """UPDATE payouts SET request_body = $2, response_status = $3, response_body = $4,
               updated_at = now()
           WHERE operation_id = $1""",
        operation_id,
        exchange.request,
        exchange.status,
        exchange.response,
    )
