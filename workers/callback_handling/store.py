"""Payment requests as the callback stage sees them, and the record of every callback."""

import json
from dataclasses import dataclass

import asyncpg

from contracts.envelope import Envelope
from contracts.events.gateway import GatewayCallbackReceivedPayload
from workers.gateway.port import Notice

# A payment whose outcome is unknown is still open: a callback or a status query decides it.
OPEN_STATES = ("requesting", "pending", "unknown")


@dataclass(frozen=True)
class PaymentRequest:
    """A charge we asked the gateway for: an order's gateway part, or a wallet top-up."""

    payment_id: str
    correlation_id: str  # the order id, or the wallet operation id
    order_id: str | None
    transaction_id: str | None
    wallet_operation_id: str | None
    buyer_id: str
    amount: int
    currency: str
    status: str
    fence: int
    total: int
    wallet_part: int
    gateway_part: int
    gateway_ref: str | None = None  # the charge the payment was decided with
    adapter: str = "direct"  # the gateway it went through
    order_state: str | None = None  # None for a wallet top-up


async def lock_request(conn: asyncpg.Connection, payment_id: str) -> PaymentRequest | None:
    row = await conn.fetchrow(
        """SELECT r.payment_id, coalesce(r.order_id, r.wallet_operation_id) AS correlation_id,
                  r.order_id, r.transaction_id, r.wallet_operation_id,
                  coalesce(t.buyer_id, w.buyer_id) AS buyer_id, r.amount, r.currency, r.status,
                  r.fence, coalesce(t.total, r.amount) AS total,
                  coalesce(t.wallet_part, 0) AS wallet_part,
                  coalesce(t.gateway_part, r.amount) AS gateway_part,
                  r.gateway_ref, r.adapter, o.state AS order_state
           FROM payment_requests r
           LEFT JOIN transactions t USING (transaction_id)
           LEFT JOIN wallet_operations w ON w.operation_id = r.wallet_operation_id
           LEFT JOIN orders o ON o.order_id = r.order_id
           WHERE r.payment_id = $1 FOR NO KEY UPDATE OF r""",
        payment_id,
    )
    return PaymentRequest(**dict(row)) if row else None


async def decide(
    conn: asyncpg.Connection, req: PaymentRequest, status: str, gateway_ref: str
) -> bool:
    """Leave an open state once; never move a decided payment (no going backwards). The
    fence read under the row lock makes a stale writer's update change nothing."""
    result = await conn.execute(
        """UPDATE payment_requests SET status = $2, gateway_ref = coalesce(gateway_ref, $3),
               fence = fence + 1, updated_at = now()
           WHERE payment_id = $1 AND fence = $4 AND status = ANY($5::text[])""",
        req.payment_id,
        status,
        gateway_ref,
        req.fence,
        list(OPEN_STATES),
    )
    return bool(result == "UPDATE 1")


async def ask_gateway_now(
    conn: asyncpg.Connection, req: PaymentRequest, evidence: dict[str, object]
) -> bool:
    """An open payment whose outcome a callback put in doubt: `unknown`, with the evidence,
    so the sweeper asks the gateway at its next pass (fenced like a decision)."""
    result = await conn.execute(
        """UPDATE payment_requests SET status = 'unknown', fence = fence + 1,
               evidence = evidence || jsonb_build_array($2::jsonb), next_check_at = now(),
               updated_at = now()
           WHERE payment_id = $1 AND fence = $3 AND status = ANY($4::text[])""",
        req.payment_id,
        json.dumps(evidence),
        req.fence,
        list(OPEN_STATES),
    )
    return bool(result == "UPDATE 1")


async def record_callback(
    conn: asyncpg.Connection,
    event: Envelope,
    received: GatewayCallbackReceivedPayload,
    notice: Notice,
    verdict: str,
    detail: str | None,
) -> None:
    await conn.execute(
        """INSERT INTO gateway_callbacks (event_id, provider, callback_id, payment_id,
               gateway_ref, raw_body, signature, verdict, detail, received_at, key_id,
               signed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
           ON CONFLICT DO NOTHING""",
        event.event_id,
        received.provider,
        notice.callback_id,
        notice.payment_id,
        notice.gateway_ref,
        received.raw_body,
        received.signature,
        verdict,
        detail,
        received.received_at,
        received.key_id,
        received.timestamp,
    )


async def callback_decided_before(
    conn: asyncpg.Connection, provider: str, callback_id: str
) -> bool:
    """Whether this provider's callback id was recorded already (any verdict): a replay."""
    seen = await conn.fetchval(
        "SELECT 1 FROM gateway_callbacks WHERE provider = $1 AND callback_id = $2 LIMIT 1",
        provider,
        callback_id,
    )
    return seen is not None
