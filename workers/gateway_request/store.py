"""Payment requests: recorded before sending, completed with what the gateway answered."""

import json
from datetime import datetime

import asyncpg

from contracts.events.funds import FundsFrozenPayload
from workers.gateway_request.rules import Asked


async def still_to_pay(pool: asyncpg.Pool, order_id: str) -> bool:
    """Whether the order still waits for its payment (a redelivery finds it requested)."""
    state = await pool.fetchval("SELECT state FROM orders WHERE order_id = $1", order_id)
    return state in ("funds_frozen", "payment_requested")


async def record_request(
    pool: asyncpg.Pool,
    payment_id: str,
    frozen: FundsFrozenPayload,
    adapter: str,
    idempotency_key: str,
    body: str,
) -> None:
    # Committed before the HTTP call, so a callback that beats our own commit still finds
    # the payment it belongs to, and the sweeper finds it if we die before the answer.
    await pool.execute(
        """INSERT INTO payment_requests (payment_id, transaction_id, order_id, attempt,
               idempotency_key, currency, amount, status, request_body, adapter)
           VALUES ($1, $2, $3, 1, $4, $5, $6, 'requesting', $7, $8) ON CONFLICT DO NOTHING""",
        payment_id,
        frozen.transaction_id,
        frozen.order_id,
        idempotency_key,
        frozen.gateway_part.currency,
        frozen.gateway_part.amount,
        body,
        adapter,
    )


async def record_answer(
    conn: asyncpg.Connection, payment_id: str, asked: Asked, next_check_at: datetime
) -> None:
    """Only a payment still 'requesting' moves: a callback or the sweeper may have decided
    it already (the evidence is kept either way)."""
    created = asked.created
    status = {"accepted": "pending", "refused": "failed", "unknown": "unknown"}[asked.outcome]
    last = asked.evidence[-1] if asked.evidence else {}
    await conn.execute(
        """UPDATE payment_requests SET
               evidence = evidence || $2::jsonb,
               response_status = $3, response_body = $4,
               gateway_ref = coalesce(gateway_ref, $5),
               pay_url = coalesce(pay_url, $6), qr_payload = coalesce(qr_payload, $7),
               next_check_at = CASE WHEN status = 'requesting' THEN $9 ELSE next_check_at END,
               status = CASE WHEN status = 'requesting' THEN $8 ELSE status END,
               updated_at = now()
           WHERE payment_id = $1""",
        payment_id,
        json.dumps(asked.evidence),
        last.get("status"),
        last.get("response"),
        created.gateway_ref if created else None,
        created.pay_url if created else None,
        created.qr_payload if created else None,
        status,
        next_check_at,
    )
