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
