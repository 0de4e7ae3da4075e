"""The record of a charge request (payment_requests): completed with what the gateway answered."""

import json
from datetime import datetime

import asyncpg

from workers.payments.rules import Asked


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
