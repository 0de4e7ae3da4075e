"""Payment requests: recorded before sending, completed with what the gateway answered."""

from dataclasses import dataclass

import asyncpg

from contracts.events.funds import FundsFrozenPayload


async def still_to_pay(pool: asyncpg.Pool, order_ids: list[str]) -> set[str]:
    """The orders (of these) still waiting for their payment (a redelivery finds one
    requested)."""
    rows = await pool.fetch(
        """SELECT order_id FROM orders WHERE order_id = ANY($1::text[])
              AND state IN ('funds_frozen', 'payment_requested')""",
        order_ids,
    )
    return {r["order_id"] for r in rows}


@dataclass(frozen=True)
class NewRequest:
    payment_id: str
    frozen: FundsFrozenPayload
    adapter: str
    idempotency_key: str
    body: str


async def record_requests(pool: asyncpg.Pool, requests: list[NewRequest]) -> None:
    """Committed before the HTTP calls (workers/gateway_request/charges.py); a request
    recorded before (a redelivery) stays as it is."""
    if not requests:
        return
    await pool.execute(
        """INSERT INTO payment_requests (payment_id, transaction_id, order_id, attempt,
               idempotency_key, currency, amount, status, request_body, adapter)
           SELECT p, t, o, 1, k, cur, amount, 'requesting', body, adapter
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::bigint[], $7::text[], $8::text[])
                  AS u(p, t, o, k, cur, amount, body, adapter)
            ORDER BY p
           ON CONFLICT DO NOTHING""",
        [r.payment_id for r in requests],
        [r.frozen.transaction_id for r in requests],
        [r.frozen.order_id for r in requests],
        [r.idempotency_key for r in requests],
        [r.frozen.gateway_part.currency for r in requests],
        [r.frozen.gateway_part.amount for r in requests],
        [r.body for r in requests],
        [r.adapter for r in requests],
    )
