"""Reconciliation SQL: our records for a day, the stored runs and lines, links, cases closed."""

import json
from datetime import date, datetime
from typing import Any

import asyncpg

from workers.recon.rules import Ours

IN_FLIGHT = ("requesting", "pending", "unknown", "requested", "frozen")

# Every record of ours that says money moved (or is moving) in [$1, $2), and any record the
# statement names ($3 gateway refs, $4 our references) whatever its state.
_CHARGES = """
SELECT 'charge' AS kind, g.payment_id AS reference, g.gateway_ref, r.amount, r.currency,
       CASE WHEN g.status = 'succeeded' THEN 'done' ELSE 'failed' END AS state,
       g.status, g.updated_at AS at, r.order_id
  FROM gateway_charges g JOIN payment_requests r USING (payment_id)
 WHERE (g.updated_at >= $1 AND g.updated_at < $2 AND g.status = 'succeeded')
    OR g.gateway_ref = ANY($3::text[])
UNION ALL
SELECT 'charge', r.payment_id, r.gateway_ref, r.amount, r.currency,
       CASE WHEN r.status = 'succeeded' THEN 'done'
            WHEN r.status IN ('requesting', 'pending', 'unknown') THEN 'in_flight'
            ELSE 'failed' END,
       r.status, CASE WHEN r.status = 'succeeded' THEN r.updated_at ELSE r.created_at END,
       r.order_id
  FROM payment_requests r
 WHERE NOT EXISTS (SELECT 1 FROM gateway_charges g WHERE g.payment_id = r.payment_id)
   AND ((r.status IN ('requesting', 'pending', 'unknown', 'succeeded')
         AND CASE WHEN r.status = 'succeeded' THEN r.updated_at ELSE r.created_at END >= $1
         AND CASE WHEN r.status = 'succeeded' THEN r.updated_at ELSE r.created_at END < $2)
        OR r.gateway_ref = ANY($3::text[]) OR r.payment_id = ANY($4::text[]))"""

_REFUNDS = """
SELECT 'refund' AS kind, g.refund_id AS reference, g.refund_ref AS gateway_ref, g.amount,
       g.currency,
       CASE WHEN g.status = 'succeeded' THEN 'done'
            WHEN g.status IN ('requested', 'pending', 'unknown') THEN 'in_flight'
            ELSE 'failed' END AS state,
       g.status, CASE WHEN g.status = 'succeeded' THEN g.updated_at ELSE g.created_at END AS at,
       r.order_id
  FROM gateway_refunds g JOIN payment_requests r USING (payment_id)
 WHERE (g.status IN ('requested', 'pending', 'unknown', 'succeeded')
        AND CASE WHEN g.status = 'succeeded' THEN g.updated_at ELSE g.created_at END >= $1
        AND CASE WHEN g.status = 'succeeded' THEN g.updated_at ELSE g.created_at END < $2)
    OR g.refund_ref = ANY($3::text[]) OR g.refund_id = ANY($4::text[])"""

# A withdrawal's payout: paid (completed), sent without an answer yet (frozen), declined.
_PAYOUTS = """
SELECT 'payout' AS kind, p.operation_id AS reference, NULL::text AS gateway_ref, w.amount,
       w.currency,
       CASE WHEN w.status = 'completed' THEN 'done'
            WHEN w.status IN ('requested', 'frozen') THEN 'in_flight'
            ELSE 'failed' END AS state,
       w.status, CASE WHEN w.status = 'completed' THEN w.updated_at ELSE p.created_at END AS at,
       NULL::text AS order_id
  FROM payouts p JOIN wallet_operations w USING (operation_id)
 WHERE (w.status IN ('requested', 'frozen', 'completed')
        AND CASE WHEN w.status = 'completed' THEN w.updated_at ELSE p.created_at END >= $1
        AND CASE WHEN w.status = 'completed' THEN w.updated_at ELSE p.created_at END < $2)
    OR p.operation_id = ANY($3::text[])"""


async def our_records(
    conn: asyncpg.Connection,
    start: datetime,
    end: datetime,
    gateway_refs: list[str],
    references: list[str],
) -> list[Ours]:
    out: list[Ours] = []
    queries = [
        (_CHARGES, (start, end, gateway_refs, references)),
        (_REFUNDS, (start, end, gateway_refs, references)),
        (_PAYOUTS, (start, end, references)),  # payouts: by our reference only
    ]
    for sql, args in queries:
        for row in await conn.fetch(sql, *args):
            out.append(Ours(**{**dict(row), "currency": row["currency"].strip()}))
    return out


async def matched_elsewhere(conn: asyncpg.Connection, day: date, our_keys: list[str]) -> set[str]:
    """Records of ours already matched to a line of another day's statement (a movement just
    before midnight seen by us just after it): not this day's."""
    rows = await conn.fetch(
        """SELECT our_key FROM recon_lines
            WHERE our_key = ANY($2::text[]) AND day <> $1 AND category = 'matched'""",
        day,
        our_keys,
    )
    return {r["our_key"] for r in rows}


async def links(conn: asyncpg.Connection, day: date) -> dict[tuple[str, str], str]:
    rows = await conn.fetch(
        "SELECT kind, gateway_ref, reference FROM recon_links WHERE day = $1", day
    )
    return {(r["kind"], r["gateway_ref"]): r["reference"] for r in rows}


async def start_run(conn: asyncpg.Connection, day: date, source: str) -> int:
    run_id: int = await conn.fetchval(
        """INSERT INTO recon_runs (day, source, matched, pending, exceptions, report)
           VALUES ($1, $2, 0, 0, 0, '{}') RETURNING run_id""",
        day,
        source,
    )
    return run_id


async def finish_run(
    conn: asyncpg.Connection, run_id: int, report: dict[str, Any], exceptions: int
) -> None:
    await conn.execute(
        """UPDATE recon_runs SET matched = $2, pending = $3, exceptions = $4, report = $5::jsonb
            WHERE run_id = $1""",
        run_id,
        report["matched"],
        report["pending"],
        exceptions,
        json.dumps(report, default=str),
    )


async def previous(conn: asyncpg.Connection, day: date) -> dict[str, asyncpg.Record]:
    """The day's stored lines (resolutions included), by key, locked for this run."""
    rows = await conn.fetch("SELECT * FROM recon_lines WHERE day = $1 FOR UPDATE", day)
    return {r["line_key"]: r for r in rows}


async def save_line(conn: asyncpg.Connection, day: date, run_id: int, row: dict[str, Any]) -> None:
    """The line's latest classification; a resolution stays while the category does."""
    await conn.execute(
        """INSERT INTO recon_lines (day, line_key, category, kind, gateway_ref, reference, our_key,
                                    statement, ours, detail, case_id, run_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11, $12)
           ON CONFLICT (day, line_key) DO UPDATE SET
               category = excluded.category, kind = excluded.kind,
               gateway_ref = excluded.gateway_ref, reference = excluded.reference,
               our_key = excluded.our_key, statement = excluded.statement, ours = excluded.ours,
               detail = excluded.detail, case_id = coalesce(excluded.case_id, recon_lines.case_id),
               run_id = excluded.run_id, updated_at = now(),
               resolution = CASE WHEN recon_lines.resolved_category = excluded.category
                                 THEN recon_lines.resolution END,
               resolved_category = CASE WHEN recon_lines.resolved_category = excluded.category
                                        THEN recon_lines.resolved_category END""",
        day,
        row["key"],
        row["category"],
        row["kind"],
        row["gateway_ref"],
        row["reference"],
        row["our_key"],
        json.dumps(row["statement"]) if row["statement"] is not None else None,
        json.dumps(row["ours"], default=str) if row["ours"] is not None else None,
        row["detail"],
        row["case_id"],
        run_id,
    )


async def drop_stale(conn: asyncpg.Connection, day: date, keys: list[str]) -> list[int]:
    """Lines of an earlier run that this one no longer has (a record now matched to a line
    through a relink, or now of another day); returns their cases."""
    rows = await conn.fetch(
        """DELETE FROM recon_lines WHERE day = $1 AND NOT (line_key = ANY($2::text[]))
           RETURNING case_id""",
        day,
        keys,
    )
    return [r["case_id"] for r in rows if r["case_id"] is not None]


async def close_unreferenced(
    conn: asyncpg.Connection, case_ids: list[int], resolution: str, who: str
) -> None:
    """Close cases no exception line refers to any more (their line went away)."""
    await conn.execute(
        """UPDATE review_cases c SET state = 'resolved', resolution = $2, resolved_by = $3,
               resolved_at = now()
            WHERE c.case_id = ANY($1::bigint[]) AND c.state = 'open'
              AND NOT EXISTS (SELECT 1 FROM recon_lines l WHERE l.case_id = c.case_id
                                 AND l.category NOT IN ('matched', 'pending'))""",
        case_ids,
        resolution,
        who,
    )
