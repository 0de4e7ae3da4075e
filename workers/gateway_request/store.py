"""Payment requests: recorded before sending, completed with what the gateway answered."""

import asyncpg

from contracts.events.funds import FundsFrozenPayload


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
