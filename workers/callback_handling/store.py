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


_LOCK = """
SELECT r.payment_id, coalesce(r.order_id, r.wallet_operation_id) AS correlation_id,
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
 WHERE r.payment_id = ANY($1::text[])
 ORDER BY coalesce(r.order_id, r.wallet_operation_id), r.payment_id
   FOR NO KEY UPDATE OF r"""


async def lock_request(conn: asyncpg.Connection, payment_id: str) -> PaymentRequest | None:
    return (await lock_requests(conn, [payment_id])).get(payment_id)


async def lock_requests(
    conn: asyncpg.Connection, payment_ids: list[str]
) -> dict[str, PaymentRequest]:
    """The payments (of these) that exist, locked until the commit in order-id order (the
    order every stage locks an order's rows in)."""
    rows = await conn.fetch(_LOCK, payment_ids)
    return {r["payment_id"]: PaymentRequest(**dict(r)) for r in rows}


async def decide(
    conn: asyncpg.Connection, req: PaymentRequest, status: str, gateway_ref: str
) -> bool:
    """Leave an open state once; never move a decided payment (no going backwards). The
    fence read under the row lock makes a stale writer's update change nothing."""
    return req.payment_id in await decide_many(conn, [(req, status, gateway_ref)])


async def decide_many(
    conn: asyncpg.Connection, decisions: list[tuple[PaymentRequest, str, str]]
) -> set[str]:
    """`decide` for many payments (request, status, gateway ref) in one statement: the
    payment ids that moved.

    A payment decided with a charge keeps that charge's ref, even when the gateway's create
    answer named another: in a double charge the other's callback can come first, and
    the payment must keep the charge its decision (and settlement) names, so that the
    one announced later is the second charge, refunded."""
    rows = await conn.fetch(
        """UPDATE payment_requests p SET status = u.status,
               gateway_ref = CASE WHEN u.status IN ('succeeded', 'manual_review') THEN u.ref
                                  ELSE coalesce(p.gateway_ref, u.ref) END,
               fence = p.fence + 1, updated_at = now()
             FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
                  AS u(id, status, ref, fence)
            WHERE p.payment_id = u.id AND p.fence = u.fence AND p.status = ANY($5::text[])
        RETURNING p.payment_id""",
        [r.payment_id for r, _, _ in decisions],
        [status for _, status, _ in decisions],
        [ref for _, _, ref in decisions],
        [r.fence for r, _, _ in decisions],
        list(OPEN_STATES),
    )
    return {r["payment_id"] for r in rows}


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


@dataclass(frozen=True)
class CallbackRecord:
    event: Envelope
    received: GatewayCallbackReceivedPayload
    notice: Notice
    verdict: str
    detail: str | None


async def record_callback(
    conn: asyncpg.Connection,
    event: Envelope,
    received: GatewayCallbackReceivedPayload,
    notice: Notice,
    verdict: str,
    detail: str | None,
) -> None:
    await record_callbacks(conn, [CallbackRecord(event, received, notice, verdict, detail)])


async def record_callbacks(conn: asyncpg.Connection, records: list[CallbackRecord]) -> None:
    await conn.execute(
        """INSERT INTO gateway_callbacks (event_id, provider, callback_id, payment_id,
               gateway_ref, raw_body, signature, verdict, detail, received_at, key_id,
               signed_at)
           SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                                $6::text[], $7::text[], $8::text[], $9::text[],
                                $10::timestamptz[], $11::text[], $12::bigint[])
           ON CONFLICT DO NOTHING""",
        [r.event.event_id for r in records],
        [r.received.provider for r in records],
        [r.notice.callback_id for r in records],
        [r.notice.payment_id for r in records],
        [r.notice.gateway_ref for r in records],
        [r.received.raw_body for r in records],
        [r.received.signature for r in records],
        [r.verdict for r in records],
        [r.detail for r in records],
        [r.received.received_at for r in records],
        [r.received.key_id for r in records],
        [r.received.timestamp for r in records],
    )


async def callback_decided_before(
    conn: asyncpg.Connection, provider: str, callback_id: str
) -> bool:
    """Whether this provider's callback id was recorded already (any verdict): a replay."""
    return (provider, callback_id) in await callbacks_decided_before(
        conn, [(provider, callback_id)]
    )


async def callbacks_decided_before(
    conn: asyncpg.Connection, callbacks: list[tuple[str, str]]
) -> set[tuple[str, str]]:
    """The (provider, callback id) pairs (of these) recorded already: replays."""
    rows = await conn.fetch(
        """SELECT DISTINCT c.provider, c.callback_id
             FROM unnest($1::text[], $2::text[]) AS u(provider, callback_id)
             JOIN gateway_callbacks c USING (provider, callback_id)""",
        [p for p, _ in callbacks],
        [c for _, c in callbacks],
    )
    return {(r["provider"], r["callback_id"]) for r in rows}
