"""What the review queue reads and writes: cases, the facts of their subjects, the operator
action log, and the few state moves an operator's action makes outside the stages."""

import json
from typing import Any

import asyncpg

from workers.review.cases import Case
from workers.runtime.outbox import Message, message_of

_CASE = """SELECT case_id, kind, subject, order_id, payment_id, reason, evidence, state,
                  resolution, resolved_by, opened_at, resolved_at FROM review_cases"""


def case_of(row: asyncpg.Record) -> Case:
    evidence = row["evidence"]
    return Case(
        case_id=row["case_id"],
        kind=row["kind"],
        subject=row["subject"],
        order_id=row["order_id"],
        payment_id=row["payment_id"],
        reason=row["reason"],
        evidence=json.loads(evidence) if isinstance(evidence, str) else dict(evidence),
        state=row["state"],
        resolution=row["resolution"],
        resolved_by=row["resolved_by"],
    )


async def cases(
    conn: asyncpg.Connection, state: str, kind: str | None, limit: int = 500
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        _CASE
        + """ WHERE ($1 = 'all' OR state = $1) AND ($2::text IS NULL OR kind = $2)
                    ORDER BY case_id LIMIT $3""",
        state,
        kind,
        limit,
    )
    return rows


async def case(conn: asyncpg.Connection, case_id: int, lock: bool = False) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        _CASE + " WHERE case_id = $1" + (" FOR UPDATE" if lock else ""), case_id
    )
    return row


async def order_state(conn: asyncpg.Connection, order_id: str) -> str | None:
    state: str | None = await conn.fetchval(
        "SELECT state FROM orders WHERE order_id = $1", order_id
    )
    return state


async def payment(
    conn: asyncpg.Connection, payment_id: str | None, order_id: str | None
) -> asyncpg.Record | None:
    """The case's payment, or the order's latest one, locked. The order's are reached through
    its transaction: payment_requests is not indexed by order (the hot path would pay for it)."""
    columns = """payment_id, order_id, wallet_operation_id, status, gateway_ref, adapter, amount,
                 currency, fence"""
    row: asyncpg.Record | None
    if payment_id is not None:
        row = await conn.fetchrow(
            f"SELECT {columns} FROM payment_requests WHERE payment_id = $1 FOR UPDATE", payment_id
        )
        return row
    row = await conn.fetchrow(
        f"""SELECT {columns} FROM payment_requests
            WHERE transaction_id = (SELECT transaction_id FROM transactions WHERE order_id = $1)
              AND order_id = $1
            ORDER BY created_at DESC LIMIT 1 FOR UPDATE""",
        order_id,
    )
    return row


async def holds_open(conn: asyncpg.Connection, order_id: str) -> bool:
    return bool(
        await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM fund_holds WHERE order_id = $1 AND state = 'held')
                   OR EXISTS (SELECT 1 FROM stock_holds WHERE order_id = $1 AND state = 'held')
                   OR EXISTS (SELECT 1 FROM coupon_grants
                              WHERE order_id = $1 AND state = 'locked')""",
            order_id,
        )
    )


async def holds(conn: asyncpg.Connection, order_id: str) -> dict[str, list[dict[str, Any]]]:
    funds = await conn.fetch(
        "SELECT account_id, amount, state FROM fund_holds WHERE order_id = $1", order_id
    )
    stock = await conn.fetch(
        "SELECT sku_id, quantity, state FROM stock_holds WHERE order_id = $1", order_id
    )
    coupons = await conn.fetch(
        "SELECT grant_id, state FROM coupon_grants WHERE order_id = $1", order_id
    )
    return {
        "funds": [dict(r) for r in funds],
        "stock": [dict(r) for r in stock],
        "coupons": [dict(r) for r in coupons],
    }


async def refund(conn: asyncpg.Connection, refund_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        """SELECT refund_id, kind, status, amount, currency, gateway_ref, attempts
           FROM gateway_refunds WHERE refund_id = $1""",
        refund_id,
    )
    return row


async def order_refund(conn: asyncpg.Connection, refund_id: str) -> asyncpg.Record | None:
    """An order refund (docs/refunds.md): 'pending' while its card share waits."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT refund_id, status, card_outcome FROM refunds WHERE refund_id = $1", refund_id
    )
    return row


async def operation(conn: asyncpg.Connection, operation_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        """SELECT operation_id, kind, buyer_id, currency, amount, status
           FROM wallet_operations WHERE operation_id = $1 FOR UPDATE""",
        operation_id,
    )
    return row


async def charge_refunded(conn: asyncpg.Connection, gateway_ref: str) -> bool:
    return bool(
        await conn.fetchval(
            """SELECT 1 FROM gateway_refunds WHERE gateway_ref = $1 AND kind = 'late_payment'
               AND status <> 'failed'""",
            gateway_ref,
        )
    )


async def charged(conn: asyncpg.Connection, gateway_ref: str) -> asyncpg.Record | None:
    """The gateway's charge as we recorded it (its amount may differ from what we asked)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT amount, currency FROM gateway_charges WHERE gateway_ref = $1", gateway_ref
    )
    return row


async def decide_payment(
    conn: asyncpg.Connection, payment_id: str, status: str, gateway_ref: str | None, why: str
) -> bool:
    """An operator's decision of a payment in manual_review (fenced like the workers')."""
    result = await conn.execute(
        """UPDATE payment_requests SET status = $2, gateway_ref = coalesce(gateway_ref, $3),
               fence = fence + 1, updated_at = now(),
               evidence = evidence || jsonb_build_array($4::jsonb)
           WHERE payment_id = $1 AND status = 'manual_review'""",
        payment_id,
        status,
        gateway_ref,
        json.dumps({"step": "operator", "status": status, "detail": why}),
    )
    return bool(result == "UPDATE 1")


async def actions(conn: asyncpg.Connection, case_id: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT action_id, operator, action, reason, outcome, detail, acted_at
           FROM operator_actions WHERE case_id = $1 ORDER BY action_id""",
        case_id,
    )
    return rows


async def unpublished(conn: asyncpg.Connection, event_ids: list[str]) -> list[Message]:
    """Of an action's events, those not published yet (the command died after its commit)."""
    rows = await conn.fetch(
        """SELECT outbox_id, topic, message_key, message_value FROM outbox
           WHERE event_id = ANY($1::uuid[]) AND published_at IS NULL ORDER BY outbox_id""",
        event_ids,
    )
    return [message_of(r) for r in rows]


async def refund_held_cases(conn: asyncpg.Connection, refund_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT case_id, state FROM review_cases
           WHERE kind = 'refund_held' AND evidence->>'refund_id' = $1 ORDER BY case_id""",
        refund_id,
    )
    return rows
