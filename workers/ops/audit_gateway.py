"""The audit's checks of the gateway edge: every charge is one a sold payment kept or is
being refunded, late payments are posted, nothing is frozen or stuck past its deadline
(liveness), and the gateway's own statement against our charges.
"""

from datetime import date
from typing import Any

import asyncpg

from infra.settings import Settings
from workers.gateway.http import gateway_session
from workers.gateway.registry import Gateways
from workers.late_payments import statement_check
from workers.ops.audit_check import Check, posted_under

GATEWAY = [
    Check(
        "no_order_charged_twice_without_refund",
        "every charge but the one a sold payment kept (an extra charge, or any charge of a "
        "payment or order not sold) has a late refund that did not fail",
        "SELECT count(*) FROM gateway_charges WHERE status = 'succeeded'",
        """SELECT g.gateway_ref, g.payment_id, g.amount, r.status AS payment_status,
                  r.gateway_ref AS kept_ref, o.state AS order_state
           FROM gateway_charges g JOIN payment_requests r USING (payment_id)
           LEFT JOIN orders o ON o.order_id = r.order_id
           WHERE g.status = 'succeeded'
             AND (g.gateway_ref IS DISTINCT FROM r.gateway_ref
                  OR r.status NOT IN ('succeeded', 'manual_review')
                  OR o.state IN ('cancelled', 'rejected'))
             AND NOT EXISTS (SELECT 1 FROM gateway_refunds f
                             WHERE f.gateway_ref = g.gateway_ref AND f.status <> 'failed')""",
    ),
    Check(
        "late_payments_posted",
        "each late payment has one posting of its amount into late_payments_payable, and a "
        "refunded one exactly one posting back out; no other has one",
        "SELECT count(*) FROM gateway_refunds WHERE kind = 'late_payment'",
        f"""SELECT f.refund_id, f.status, f.amount, coalesce(a.amount, 0) AS arrived,
                  coalesce(r.amount, 0) AS returned
           FROM gateway_refunds f
           LEFT JOIN ({posted_under("late_payment:")}) a
                  ON a.idempotency_key = 'late_payment:' || f.refund_id
           LEFT JOIN ({posted_under("late_payment_refund:")}) r
                  ON r.idempotency_key = 'late_payment_refund:' || f.refund_id
           WHERE f.kind = 'late_payment'
             AND (coalesce(a.amount, 0) <> f.amount
                  OR coalesce(r.amount, 0)
                     <> CASE WHEN f.status = 'succeeded' THEN f.amount ELSE 0 END)""",
    ),
    Check(
        "nothing_frozen_past_deadline",
        "no fund hold is still held past its deadline (plus a grace for the sweeper)",
        "SELECT count(*) FROM fund_holds WHERE state = 'held'",
        """SELECT order_id, account_id, amount, expires_at FROM fund_holds
           WHERE state = 'held'
             AND expires_at < now() - make_interval(secs => {frozen_grace_s})""",
        liveness=True,
    ),
    Check(
        "payments_never_stuck",
        "no payment is still requesting, pending or unknown past the payment window plus "
        "the whole sweeper schedule",
        "SELECT count(*) FROM payment_requests",
        """SELECT payment_id, status, created_at FROM payment_requests
           WHERE status IN ('requesting', 'pending', 'unknown')
             AND created_at < now() - make_interval(secs => {stuck_after_s})""",
        liveness=True,
    ),
]


def deadlines(settings: Settings) -> dict[str, float]:
    """How long things may take before they are a violation (filled into the checks)."""
    grace = settings.callback_grace_s + 2 * settings.sweeper_interval_s
    return {
        "frozen_grace_s": grace,
        "stuck_after_s": settings.payment_window_s + sum(settings.sweeper_schedule) + grace,
    }


async def gateway_audit(
    conn: asyncpg.Connection, settings: Settings, day: date, report: dict[str, Any]
) -> None:
    """Add the gateway's statement for `day` against our charges to `report`."""
    async with gateway_session() as http:
        gateways = Gateways(settings, http)
        names = sorted({"direct", *settings.routes.values()})
        lines = await statement_check.statement_lines([gateways.adapter(n) for n in names], day)
    found = await statement_check.compare(conn, lines)
    report["checked"]["gateway_charges_have_payments"] = len(lines)
    report["violations"].extend(found)
    report["ok"] = not report["violations"]
