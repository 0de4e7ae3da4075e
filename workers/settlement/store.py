"""What settlement reads and writes besides the ledger."""

import asyncpg


async def details(conn: asyncpg.Connection, transaction_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT sub_order_id, merchant_id, amount, fee, net, subsidy FROM transaction_details
           WHERE transaction_id = $1 ORDER BY sub_order_id""",
        transaction_id,
    )
    return rows


async def set_transaction_status(
    conn: asyncpg.Connection, transaction_id: str, status: str, reason: str | None = None
) -> bool:
    # Only a pending or paid transaction moves; a settled or cancelled one never changes.
    result = await conn.execute(
        """UPDATE transactions SET status = $2, status_reason = coalesce($3, status_reason),
               updated_at = now()
           WHERE transaction_id = $1 AND status IN ('pending_payment', 'paid', 'manual_review')""",
        transaction_id,
        status,
        reason,
    )
    return bool(result == "UPDATE 1")


async def paid_transaction(
    conn: asyncpg.Connection, transaction_id: str, order_id: str, gateway_ref: str | None
) -> tuple[asyncpg.Record | None, str]:
    """The transaction as our own records hold it, if they say it was paid: a gateway part
    needs our payment request for it decided 'succeeded' with this charge; a wallet-only
    order needs gateway_request to have marked it paid. Otherwise (None, why)."""
    t = await conn.fetchrow(
        """SELECT t.transaction_id, t.order_id, t.buyer_id, t.currency, t.total, t.wallet_part,
                  t.gateway_part, o.state AS order_state
           FROM transactions t JOIN orders o USING (order_id)
           WHERE t.transaction_id = $1 AND t.order_id = $2""",
        transaction_id,
        order_id,
    )
    if t is None:
        return None, f"no transaction {transaction_id} for order {order_id}"
    if t["gateway_part"] == 0:
        if t["order_state"] in ("paid", "settled"):
            return t, ""
        return None, f"wallet-only order {order_id} is {t['order_state']}, not paid"
    paid = await conn.fetchval(
        """SELECT 1 FROM payment_requests WHERE transaction_id = $1 AND status = 'succeeded'
             AND gateway_ref = $2""",
        transaction_id,
        gateway_ref,
    )
    if paid is None:
        return None, f"no succeeded payment of {transaction_id} with gateway_ref {gateway_ref}"
    return t, ""
