"""Reconciliation SQL for operator actions (resolve.py): the lines a resolve names, links,
the operator action log and what the fenced path left behind."""

from datetime import date

import asyncpg


async def add_link(
    conn: asyncpg.Connection, day: date, kind: str, gateway_ref: str, reference: str, who: str
) -> None:
    await conn.execute(
        """INSERT INTO recon_links (day, kind, gateway_ref, reference, linked_by)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (day, kind, gateway_ref) DO UPDATE SET reference = excluded.reference,
               linked_by = excluded.linked_by, linked_at = now()""",
        day,
        kind,
        gateway_ref,
        reference,
        who,
    )


async def find_lines(
    conn: asyncpg.Connection, case_id: int | None, day: date | None, ref: str | None
) -> list[asyncpg.Record]:
    """The stored lines a resolve names: by case id, or by day and a reference (gateway's or
    ours); exceptions first."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT l.*, c.state AS case_state FROM recon_lines l
             LEFT JOIN review_cases c USING (case_id)
            WHERE ($1::bigint IS NOT NULL AND l.case_id = $1)
               OR ($2::date IS NOT NULL AND l.day = $2
                   AND (l.gateway_ref = $3 OR l.reference = $3 OR l.line_key = $3))
            ORDER BY (l.category IN ('matched', 'pending')), l.line_key
            FOR UPDATE OF l""",
        case_id,
        day,
        ref,
    )
    return rows


async def mark_resolved(conn: asyncpg.Connection, day: date, line_key: str, action: str) -> None:
    await conn.execute(
        """UPDATE recon_lines SET resolution = $3, resolved_category = category, updated_at = now()
            WHERE day = $1 AND line_key = $2""",
        day,
        line_key,
        action,
    )


async def late_refund_of(conn: asyncpg.Connection, gateway_ref: str) -> str | None:
    found: str | None = await conn.fetchval(
        "SELECT refund_id FROM gateway_refunds WHERE gateway_ref = $1 AND kind = 'late_payment'",
        gateway_ref,
    )
    return found


_OURS_BY_KIND = {
    "charge": "SELECT 1 FROM payment_requests WHERE payment_id = $1",
    "refund": "SELECT 1 FROM gateway_refunds WHERE refund_id = $1",
    "payout": "SELECT 1 FROM payouts WHERE operation_id = $1",
}


async def ours_exists(conn: asyncpg.Connection, kind: str, reference: str) -> bool:
    return await conn.fetchval(_OURS_BY_KIND[kind], reference) is not None
