"""Payment requests: recorded before sending, completed with the gateway's answer."""

import json

import asyncpg

from contracts.events.funds import FundsFrozenPayload
from workers.gateway_request.client import GatewayReply


async def record_request(
    pool: asyncpg.Pool, payment_id: str, frozen: FundsFrozenPayload, idempotency_key: str, body: str
) -> None:
    # Committed before the HTTP call, so a callback that beats our own commit still finds
    # the payment it belongs to.
    await pool.execute(
        """INSERT INTO payment_requests (payment_id, transaction_id, order_id, attempt,
               idempotency_key, currency, amount, status, request_body)
           VALUES ($1, $2, $3, 1, $4, $5, $6, 'requesting', $7) ON CONFLICT DO NOTHING""",
        payment_id,
        frozen.transaction_id,
        frozen.order_id,
        idempotency_key,
        frozen.gateway_part.currency,
        frozen.gateway_part.amount,
        body,
    )


async def record_reply(conn: asyncpg.Connection, payment_id: str, reply: GatewayReply) -> None:
    gateway_ref = None
    if reply.accepted:
        gateway_ref = json.loads(reply.body).get("gateway_ref")
    await conn.execute(
        """UPDATE payment_requests SET response_status = $2, response_body = $3,
               gateway_ref = coalesce(gateway_ref, $4),
               status = CASE WHEN status = 'requesting' THEN $5 ELSE status END,
               updated_at = now()
           WHERE payment_id = $1""",
        payment_id,
        reply.status,
        reply.body,
        gateway_ref,
        "pending" if reply.accepted else "failed",
    )
