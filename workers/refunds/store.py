"""What a refund of a settled order reads and writes besides the ledger."""

import hashlib
import json
from dataclasses import dataclass

import asyncpg

from contracts.events.refunds import RefundRequestedPayload
from workers.refunds.rules import Line, Paid, Plan, SubOrder


@dataclass(frozen=True)
class Order:
    transaction_id: str
    buyer_id: str
    paid: Paid


@dataclass(frozen=True)
class Charge:
    """The charge that paid the order's gateway part: what its card share is refunded from."""

    payment_id: str
    gateway_ref: str
    adapter: str


def card_refund_id(refund_id: str) -> str:
    """Our id for the card share at the gateway (gateway_refunds.refund_id): at most 64
    characters like every id the gateway takes, so a long refund id is hashed."""
    if len(refund_id) <= 58:
        return f"order:{refund_id}"
    return f"order:h{hashlib.sha256(refund_id.encode()).hexdigest()[:40]}"


async def refund_digest(conn: asyncpg.Connection, refund_id: str) -> str | None:
    digest: str | None = await conn.fetchval(
        "SELECT request_digest FROM refunds WHERE refund_id = $1", refund_id
    )
    return digest


async def lock_order(conn: asyncpg.Connection, order_id: str) -> Order | None:
    """The order's transaction, locked: refunds of one order run one after the other, so
    the running totals they are bounded by cannot move underneath them."""
    t = await conn.fetchrow(
        """SELECT t.transaction_id, t.buyer_id, t.currency, t.total, t.gateway_part,
                  o.state AS order_state
           FROM transactions t JOIN orders o USING (order_id)
           WHERE t.order_id = $1 FOR UPDATE OF t""",
        order_id,
    )
    if t is None:
        return None
    sums = await conn.fetchrow(
        """SELECT coalesce(sum(amount), 0)::bigint AS refunded,
                  coalesce(sum(card_amount), 0)::bigint AS card
           FROM refunds WHERE order_id = $1 AND status <> 'rejected'""",
        order_id,
    )
    paid = Paid(
        t["order_state"],
        t["currency"],
        t["total"],
        t["gateway_part"],
        sums["refunded"],
        sums["card"],
    )
    return Order(t["transaction_id"], t["buyer_id"], paid)


async def sub_orders(conn: asyncpg.Connection, transaction_id: str) -> list[SubOrder]:
    rows = await conn.fetch(
        """SELECT d.sub_order_id, d.merchant_id, d.amount AS gross, d.fee, d.subsidy,
                  s.subtotal,
                  (SELECT coalesce(sum(p.amount), 0)::bigint FROM refund_parts p JOIN refunds r
                     USING (refund_id)
                    WHERE p.sub_order_id = d.sub_order_id AND r.status <> 'rejected') AS refunded
           FROM transaction_details d JOIN sub_orders s USING (sub_order_id)
           WHERE d.transaction_id = $1 ORDER BY d.sub_order_id""",
        transaction_id,
    )
    items = await conn.fetch(
        """SELECT i.sub_order_id, i.sku_id, i.quantity, i.line_total,
                  (SELECT coalesce(sum(ri.quantity), 0)::bigint FROM refund_items ri JOIN refunds r
                     USING (refund_id)
                    WHERE ri.sub_order_id = i.sub_order_id AND ri.sku_id = i.sku_id
                      AND r.status <> 'rejected') AS returned
           FROM order_items i WHERE i.sub_order_id = ANY($1::text[])
           ORDER BY i.sub_order_id, i.sku_id""",
        [r["sub_order_id"] for r in rows],
    )
    lines: dict[str, list[Line]] = {}
    for i in items:
        line = Line(i["sku_id"], i["quantity"], i["line_total"], i["returned"])
        lines.setdefault(i["sub_order_id"], []).append(line)
    return [
        SubOrder(
            r["sub_order_id"],
            r["merchant_id"],
            r["gross"],
            r["fee"],
            r["subsidy"],
            r["subtotal"],
            r["refunded"],
            tuple(lines.get(r["sub_order_id"], ())),
        )
        for r in rows
    ]


async def paying_charge(conn: asyncpg.Connection, transaction_id: str) -> Charge | None:
    row = await conn.fetchrow(
        """SELECT payment_id, gateway_ref, adapter FROM payment_requests
           WHERE transaction_id = $1 AND status = 'succeeded' AND gateway_ref IS NOT NULL""",
        transaction_id,
    )
    return Charge(row["payment_id"], row["gateway_ref"], row["adapter"]) if row else None


async def record_rejected(
    conn: asyncpg.Connection, r: RefundRequestedPayload, digest: str, code: str, currency: str
) -> None:
    """A refused request is kept, so the same request again gets the same answer.
    `currency`: the order's, when the request named no amount (or the order is unknown)."""
    await conn.execute(
        """INSERT INTO refunds (refund_id, order_id, sub_order_id, currency, amount, reason,
                                request_digest, status, status_reason, restock)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 'rejected', $8, $9)""",
        r.refund_id,
        r.order_id,
        r.sub_order_id,
        r.amount.currency if r.amount else currency,
        r.amount.amount if r.amount and r.amount.amount > 0 else None,
        r.reason,
        digest,
        code,
        r.restock,
    )


async def record_accepted(
    conn: asyncpg.Connection, r: RefundRequestedPayload, digest: str, currency: str, plan: Plan
) -> None:
    """The refund, its parts and its items; 'pending' while a card share is on its way."""
    status = "pending" if plan.to_card else "completed"
    await conn.execute(
        """INSERT INTO refunds (refund_id, order_id, sub_order_id, currency, amount, reason,
                                request_digest, status, wallet_amount, card_amount, restock,
                                completed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                   CASE WHEN $8 = 'completed' THEN now() END)""",
        r.refund_id,
        r.order_id,
        r.sub_order_id,
        currency,
        plan.amount,
        r.reason,
        digest,
        status,
        plan.to_wallet,
        plan.to_card,
        plan.restock,
    )
    await conn.executemany(
        """INSERT INTO refund_parts (refund_id, sub_order_id, amount, fee_back)
           VALUES ($1, $2, $3, $4)""",
        [(r.refund_id, p.sub_order_id, p.amount, p.fee_back) for p in plan.parts],
    )
    await conn.executemany(
        """INSERT INTO refund_items (refund_id, sub_order_id, sku_id, quantity, restocked)
           VALUES ($1, $2, $3, $4, $5)""",
        [(r.refund_id, i.sub_order_id, i.sku_id, i.quantity, plan.restock) for i in plan.returned],
    )


async def restock(conn: asyncpg.Connection, plan: Plan) -> None:
    """Items given back go on sale again, in sku order (concurrent restocks never deadlock)."""
    for item in sorted(plan.returned, key=lambda i: i.sku_id):
        moved = await conn.execute(
            """UPDATE stock SET sold = sold - $2, available = available + $2
               WHERE sku_id = $1 AND sold >= $2""",
            item.sku_id,
            item.quantity,
        )
        if moved != "UPDATE 1":
            raise ValueError(f"stock of {item.sku_id} has fewer than {item.quantity} sold")


async def open_card_refund(
    conn: asyncpg.Connection,
    r: RefundRequestedPayload,
    charge: Charge,
    currency: str,
    amount: int,
) -> None:
    """The card share, for the refund job to send through the gateway (workers/late_payments
    /refund_job.py sends every gateway refund, whatever its kind)."""
    await conn.execute(
        """INSERT INTO gateway_refunds (refund_id, kind, order_refund_id, payment_id,
                                        gateway_ref, adapter, amount, currency, reason, status,
                                        evidence)
           VALUES ($1, 'order_refund', $2, $3, $4, $5, $6, $7, $8, 'requested',
                   jsonb_build_array($9::jsonb))""",
        card_refund_id(r.refund_id),
        r.refund_id,
        charge.payment_id,
        charge.gateway_ref,
        charge.adapter,
        amount,
        currency,
        r.reason,
        json.dumps({"step": "opened", "order_id": r.order_id}),
    )


@dataclass(frozen=True)
class Pending:
    """An order refund waiting for its card share."""

    refund_id: str
    order_id: str
    sub_order_id: str | None
    buyer_id: str
    currency: str
    amount: int
    wallet_amount: int
    card_amount: int


async def lock_pending(conn: asyncpg.Connection, refund_id: str) -> Pending | None:
    row = await conn.fetchrow(
        """SELECT r.refund_id, r.order_id, r.sub_order_id, t.buyer_id, r.currency, r.amount,
                  r.wallet_amount, r.card_amount
           FROM refunds r JOIN transactions t USING (order_id)
           WHERE r.refund_id = $1 AND r.status = 'pending' FOR UPDATE OF r""",
        refund_id,
    )
    return Pending(**dict(row)) if row else None


async def complete(conn: asyncpg.Connection, refund_id: str, card_outcome: str) -> None:
    await conn.execute(
        """UPDATE refunds SET status = 'completed', card_outcome = $2, completed_at = now()
           WHERE refund_id = $1 AND status = 'pending'""",
        refund_id,
        card_outcome,
    )
