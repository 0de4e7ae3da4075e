"""What settlement reads and writes besides the ledger."""

import asyncpg


async def details(
    conn: asyncpg.Connection, transaction_ids: list[str]
) -> dict[str, list[asyncpg.Record]]:
    """Each transaction's per-merchant details, in sub-order order."""
    rows = await conn.fetch(
        """SELECT transaction_id, sub_order_id, merchant_id, amount, fee, net, subsidy
             FROM transaction_details WHERE transaction_id = ANY($1::text[])
            ORDER BY transaction_id, sub_order_id""",
        transaction_ids,
    )
    found: dict[str, list[asyncpg.Record]] = {t: [] for t in transaction_ids}
    for r in rows:
        found[r["transaction_id"]].append(r)
    return found


async def set_transaction_status(
    conn: asyncpg.Connection, transaction_id: str, status: str, reason: str | None = None
) -> bool:
    return await set_transaction_statuses(conn, [transaction_id], status, reason) == 1


async def set_transaction_statuses(
    conn: asyncpg.Connection, transaction_ids: list[str], status: str, reason: str | None = None
) -> int:
    # Only a pending or paid transaction moves; a settled or cancelled one never changes.
    result = await conn.execute(
        """UPDATE transactions SET status = $2, status_reason = coalesce($3, status_reason),
               updated_at = now()
           WHERE transaction_id = ANY($1::text[])
             AND status IN ('pending_payment', 'paid', 'manual_review')""",
        sorted(transaction_ids),
        status,
        reason,
    )
    return int(result.split()[-1])


Paid = tuple[asyncpg.Record | None, str]


async def paid_transactions(
    conn: asyncpg.Connection, decisions: list[tuple[str, str, str | None]]
) -> dict[tuple[str, str, str | None], Paid]:
    """Each transaction (of these (transaction id, order id, gateway ref)) as our own records
    hold it, if they say it was paid: a gateway part needs our payment request for it decided
    'succeeded' with this charge; a wallet-only order needs gateway_request to have marked it
    paid. Otherwise (None, why). One query for all."""
    rows = await conn.fetch(
        """SELECT d.txn, d.o, d.ref, t.transaction_id, t.order_id, t.buyer_id, t.currency, t.total,
                  t.wallet_part, t.gateway_part, o.state AS order_state,
                  EXISTS (SELECT FROM payment_requests r
                           WHERE r.transaction_id = t.transaction_id AND r.status = 'succeeded'
                             AND r.gateway_ref = d.ref) AS paid
             FROM unnest($1::text[], $2::text[], $3::text[]) AS d(txn, o, ref)
             JOIN transactions t ON t.transaction_id = d.txn AND t.order_id = d.o
             JOIN orders o ON o.order_id = t.order_id""",
        [t for t, _, _ in decisions],
        [o for _, o, _ in decisions],
        [g for _, _, g in decisions],
    )
    found = {(r["txn"], r["o"], r["ref"]): r for r in rows}
    return {d: _judged(found.get(d), *d) for d in decisions}


def _judged(t: asyncpg.Record | None, txn: str, order_id: str, ref: str | None) -> Paid:
    if t is None:
        return None, f"no transaction {txn} for order {order_id}"
    if t["gateway_part"] == 0:
        if t["order_state"] in ("paid", "settled"):
            return t, ""
        return None, f"wallet-only order {order_id} is {t['order_state']}, not paid"
    if not t["paid"]:
        return None, f"no succeeded payment of {txn} with gateway_ref {ref}"
    return t, ""
