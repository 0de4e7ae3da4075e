"""The audit: every money invariant that applies so far (FIELD-NOTES section 4).

Each check is one SQL query that returns the offending rows; a clean database returns none.
"""

import json
import sys
from dataclasses import dataclass
from datetime import date
from typing import Any

import aiohttp
import asyncpg

from infra.settings import Settings, get_settings
from workers.gateway.port import GatewayRefused, GatewayUnknown
from workers.gateway.registry import Gateways
from workers.late_payments import statement_check
from workers.runtime.db import connect


@dataclass(frozen=True)
class Check:
    name: str
    what: str
    count_sql: str  # how many things were checked
    violations_sql: str  # offending rows
    # Liveness: holds and payments resolved in time. Needs the sweeper running; a test of the
    # money core alone (no sweeper) checks consistency only.
    liveness: bool = False


CHECKS = [
    Check(
        "money_conserved_per_currency",
        "the balances of all accounts sum to zero per currency (every entry has two sides)",
        "SELECT count(DISTINCT currency) FROM accounts",
        """SELECT currency, sum(total) AS sum_total FROM accounts
             GROUP BY currency HAVING sum(total) <> 0""",
    ),
    Check(
        "entries_match_account_currency",
        "every ledger entry is in the currency of both its accounts",
        "SELECT count(*) FROM ledger_entries",
        """SELECT e.entry_id, e.currency, d.currency AS debit_currency,
                    c.currency AS credit_currency
             FROM ledger_entries e JOIN accounts d ON d.account_id = e.debit_account_id
             JOIN accounts c ON c.account_id = e.credit_account_id
             WHERE e.currency <> d.currency OR e.currency <> c.currency""",
    ),
    Check(
        "balance_equals_replayed_entries",
        "each account's total equals its credits minus its debits",
        "SELECT count(*) FROM accounts",
        """SELECT a.account_id, a.total,
                    coalesce(c.s, 0) - coalesce(d.s, 0) AS replayed
             FROM accounts a
             LEFT JOIN (SELECT credit_account_id AS id, sum(amount) s FROM ledger_entries
                        GROUP BY 1) c ON c.id = a.account_id
             LEFT JOIN (SELECT debit_account_id AS id, sum(amount) s FROM ledger_entries
                        GROUP BY 1) d ON d.id = a.account_id
             WHERE a.total <> coalesce(c.s, 0) - coalesce(d.s, 0)""",
    ),
    Check(
        "total_is_available_plus_frozen",
        "total = available + frozen",
        "SELECT count(*) FROM accounts",
        """SELECT account_id, total, available, frozen FROM accounts
             WHERE total <> available + frozen""",
    ),
    Check(
        "no_negative_balance",
        "available >= 0 except outside-world accounts",
        "SELECT count(*) FROM accounts",
        """SELECT account_id, available FROM accounts
             WHERE available < 0 AND NOT may_go_negative""",
    ),
    Check(
        "frozen_equals_open_holds",
        "each account's frozen equals the sum of its open holds",
        "SELECT count(*) FROM accounts",
        """SELECT a.account_id, a.frozen, coalesce(h.s, 0) AS open_holds FROM accounts a
             LEFT JOIN (SELECT account_id, sum(amount) s FROM fund_holds WHERE state = 'held'
                        GROUP BY 1) h ON h.account_id = a.account_id
             WHERE a.frozen <> coalesce(h.s, 0)""",
    ),
    Check(
        "holds_resolved_consistently",
        "a confirmed hold confirmed exactly what it held; a cancelled one nothing",
        "SELECT count(*) FROM fund_holds",
        """SELECT order_id, account_id, state, amount, confirmed_amount FROM fund_holds
             WHERE confirmed_amount > amount
                OR (state = 'confirmed' AND confirmed_amount <> amount)
                OR (state IN ('held', 'cancelled') AND confirmed_amount <> 0)""",
    ),
    Check(
        "tcc_never_both_confirmed_and_cancelled",
        "no branch has both an applied Confirm and a Cancel",
        "SELECT count(DISTINCT (gid, branch)) FROM tcc_barrier",
        """SELECT gid, branch FROM tcc_barrier WHERE phase IN ('confirm', 'cancel')
             GROUP BY gid, branch HAVING count(*) > 1""",
    ),
    Check(
        "settled_orders_posted_once",
        "each settled order has exactly one purchase posting whose merchant and fee legs "
        "add up to its total plus the platform's coupon subsidy",
        "SELECT count(*) FROM orders WHERE state = 'settled'",
        """SELECT o.order_id, t.total, s.subsidy, count(DISTINCT l.ledger_txn_id) AS postings,
                  coalesce(sum(e.amount) FILTER (WHERE e.leg LIKE 'merchant:%'
                                                 OR e.leg LIKE 'fee:%'), 0) AS paid_out
           FROM orders o JOIN transactions t USING (order_id)
           JOIN (SELECT transaction_id, sum(subsidy) AS subsidy FROM transaction_details
                 GROUP BY 1) s USING (transaction_id)
           LEFT JOIN ledger_transactions l ON l.order_id = o.order_id AND l.kind = 'purchase'
           LEFT JOIN ledger_entries e ON e.ledger_txn_id = l.ledger_txn_id
           WHERE o.state = 'settled'
           GROUP BY o.order_id, t.total, s.subsidy
           HAVING count(DISTINCT l.ledger_txn_id) <> 1
               OR coalesce(sum(e.amount) FILTER (WHERE e.leg LIKE 'merchant:%'
                                                 OR e.leg LIKE 'fee:%'), 0) <> t.total + s.subsidy""",
    ),
    Check(
        "cancelled_orders_hold_nothing",
        "a cancelled order has no posting, no open fund hold and no held stock",
        "SELECT count(*) FROM orders WHERE state = 'cancelled'",
        """SELECT o.order_id FROM orders o WHERE o.state = 'cancelled' AND (
                 EXISTS (SELECT 1 FROM ledger_transactions l WHERE l.order_id = o.order_id
                         AND l.kind = 'purchase')
              OR EXISTS (SELECT 1 FROM fund_holds h WHERE h.order_id = o.order_id
                         AND h.state <> 'cancelled')
              OR EXISTS (SELECT 1 FROM stock_holds s WHERE s.order_id = o.order_id
                         AND s.state <> 'released'))""",
    ),
    Check(
        "stock_held_equals_open_holds",
        "each SKU's held stock equals its open stock holds",
        "SELECT count(*) FROM stock",
        """SELECT s.sku_id, s.held, coalesce(h.q, 0) AS open_holds FROM stock s
             LEFT JOIN (SELECT sku_id, sum(quantity) q FROM stock_holds WHERE state = 'held'
                        GROUP BY 1) h ON h.sku_id = s.sku_id
             WHERE s.held <> coalesce(h.q, 0)""",
    ),
    Check(
        "transaction_details_sum_to_total",
        "a transaction's per-merchant lines, less the platform's subsidy, add up to its total",
        "SELECT count(*) FROM transactions",
        """SELECT t.transaction_id, t.total, coalesce(sum(d.amount - d.subsidy), 0) AS lines
           FROM transactions t LEFT JOIN transaction_details d USING (transaction_id)
           GROUP BY t.transaction_id, t.total
           HAVING t.total <> coalesce(sum(d.amount - d.subsidy), 0)""",
    ),
    Check(
        "wallet_operations_posted_once",
        "a completed top-up or withdrawal has exactly one posting of its amount; any other "
        "has none; a withdrawal's hold matches its status",
        "SELECT count(*) FROM wallet_operations",
        """SELECT w.operation_id, w.kind, w.status, w.amount,
                  count(DISTINCT l.ledger_txn_id) AS postings, coalesce(sum(e.amount), 0) AS posted,
                  max(h.state) AS hold
           FROM wallet_operations w
           LEFT JOIN ledger_transactions l
                  ON l.idempotency_key = w.kind || ':' || w.operation_id
           LEFT JOIN ledger_entries e ON e.ledger_txn_id = l.ledger_txn_id
           LEFT JOIN fund_holds h ON h.order_id = w.operation_id
           GROUP BY w.operation_id, w.kind, w.status, w.amount
           HAVING (w.status = 'completed') <> (count(DISTINCT l.ledger_txn_id) = 1)
               OR (w.status = 'completed' AND coalesce(sum(e.amount), 0) <> w.amount)
               OR (w.kind = 'withdrawal' AND w.status = 'completed'
                   AND max(h.state) IS DISTINCT FROM 'confirmed')
               OR (w.kind = 'withdrawal' AND w.status = 'frozen'
                   AND max(h.state) IS DISTINCT FROM 'held')
               OR (w.kind = 'withdrawal' AND w.status = 'failed'
                   AND coalesce(max(h.state), 'cancelled') <> 'cancelled')""",
    ),
    Check(
        "refunds_never_exceed_what_was_paid",
        "per sub-order, completed refunds add up to at most what the buyer paid for it",
        "SELECT count(DISTINCT sub_order_id) FROM refunds",
        """SELECT d.sub_order_id, d.amount - d.subsidy AS paid, sum(r.amount) AS refunded
           FROM refunds r JOIN transaction_details d USING (sub_order_id)
           WHERE r.status = 'completed'
           GROUP BY d.sub_order_id, d.amount, d.subsidy
           HAVING sum(r.amount) > d.amount - d.subsidy""",
    ),
    Check(
        "refunds_posted_once",
        "a completed refund has exactly one posting paying its amount to the buyer; a "
        "rejected one has none",
        "SELECT count(*) FROM refunds",
        """SELECT r.refund_id, r.status, r.amount, count(DISTINCT l.ledger_txn_id) AS postings,
                  coalesce(sum(e.amount) FILTER (WHERE e.leg = 'refund:buyer'), 0) AS to_buyer
           FROM refunds r
           LEFT JOIN ledger_transactions l ON l.idempotency_key = 'refund:' || r.refund_id
           LEFT JOIN ledger_entries e ON e.ledger_txn_id = l.ledger_txn_id
           GROUP BY r.refund_id, r.status, r.amount
           HAVING (r.status = 'completed') <> (count(DISTINCT l.ledger_txn_id) = 1)
               OR (r.status = 'completed'
                   AND coalesce(sum(e.amount) FILTER (WHERE e.leg = 'refund:buyer'), 0)
                       <> r.amount)""",
    ),
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
        """SELECT f.refund_id, f.status, f.amount,
                  (SELECT coalesce(sum(e.amount), 0) FROM ledger_transactions l
                     JOIN ledger_entries e USING (ledger_txn_id)
                    WHERE l.idempotency_key = 'late_payment:' || f.refund_id) AS arrived,
                  (SELECT coalesce(sum(e.amount), 0) FROM ledger_transactions l
                     JOIN ledger_entries e USING (ledger_txn_id)
                    WHERE l.idempotency_key = 'late_payment_refund:' || f.refund_id)
                    AS returned
           FROM gateway_refunds f WHERE f.kind = 'late_payment'
           AND ((SELECT coalesce(sum(e.amount), 0) FROM ledger_transactions l
                   JOIN ledger_entries e USING (ledger_txn_id)
                  WHERE l.idempotency_key = 'late_payment:' || f.refund_id) <> f.amount
             OR (SELECT coalesce(sum(e.amount), 0) FROM ledger_transactions l
                   JOIN ledger_entries e USING (ledger_txn_id)
                  WHERE l.idempotency_key = 'late_payment_refund:' || f.refund_id)
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
    Check(
        "one_effect_per_event",
        "each output event was stored once (derived ids) and each inbox row is unique",
        "SELECT count(*) FROM outbox",
        """SELECT event_id, count(*) FROM outbox GROUP BY event_id HAVING count(*) > 1""",
    ),
]


def _deadlines(settings: Settings) -> dict[str, float]:
    """How long things may take before they are a violation (filled into the checks)."""
    grace = settings.callback_grace_s + 2 * settings.sweeper_interval_s
    return {
        "frozen_grace_s": grace,
        "stuck_after_s": settings.payment_window_s + sum(settings.sweeper_schedule) + grace,
    }


async def run_audit(
    conn: asyncpg.Connection, settings: Settings | None = None, *, liveness: bool = True
) -> dict[str, Any]:
    violations: list[dict[str, Any]] = []
    checked: dict[str, int] = {}
    deadlines = _deadlines(settings or get_settings())
    # One snapshot for every check, so a pipeline still running cannot fake a violation.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        for check in (c for c in CHECKS if liveness or not c.liveness):
            checked[check.name] = int(await conn.fetchval(check.count_sql) or 0)
            sql = check.violations_sql.format(**deadlines)
            for row in await conn.fetch(sql + " LIMIT 50"):
                violations.append(
                    {
                        "check": check.name,
                        "rule": check.what,
                        "row": {k: _plain(v) for k, v in dict(row).items()},
                    }
                )
    return {"ok": not violations, "violations": violations, "checked": checked}


def _plain(value: Any) -> Any:
    return value if isinstance(value, (int, str, bool, type(None))) else str(value)


async def gateway_audit(
    conn: asyncpg.Connection, settings: Settings, day: date, report: dict[str, Any]
) -> None:
    """Add the gateway's statement for `day` against our charges to `report`."""
    async with aiohttp.ClientSession() as http:
        gateways = Gateways(settings, http)
        names = sorted({"direct", *settings.routes.values()})
        lines = await statement_check.statement_lines([gateways.adapter(n) for n in names], day)
    found = await statement_check.compare(conn, lines)
    report["checked"]["gateway_charges_have_payments"] = len(lines)
    report["violations"].extend(found)
    report["ok"] = not report["violations"]


async def main_audit(settings: Settings, *, as_json: bool, gateway_day: date | None = None) -> int:
    """The DB audit; with `gateway_day`, the gateway's statement for that day too (exits 1
    with one line when the gateway cannot be asked)."""
    conn = await connect(settings)
    try:
        report = await run_audit(conn, settings)
        if gateway_day is not None:
            try:
                await gateway_audit(conn, settings, gateway_day, report)
            except (GatewayUnknown, GatewayRefused) as exc:
                print(
                    f"audit: gateway statement for {gateway_day} unavailable: {exc}",
                    file=sys.stderr,
                )
                return 1
    finally:
        await conn.close()
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        for name, n in report["checked"].items():
            bad = [v for v in report["violations"] if v["check"] == name]
            print(f"{'FAIL' if bad else 'ok  '} {name} ({n} checked)")
            for v in bad:
                print(f"       {v['row']}")
        print("audit clean" if report["ok"] else f"{len(report['violations'])} violation(s)")
    return 0 if report["ok"] else 1
