"""The audit's rule that a cancelled order keeps nothing: each way of breaking it is found,
by order, and nothing else is (on a database of its own: the violations are planted). And
the audit stays a pass over the books, never a read of a table per row: it is run on
databases of millions of orders."""

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from infra.settings import Settings
from tests.support.gateway_edge import plant_payment
from tests.support.services import scratch_database
from workers.ops.audit import CHECKS, run_audit
from workers.ops.audit_gateway import deadlines

pytestmark = pytest.mark.integration

CHECK = "cancelled_orders_hold_nothing"


@pytest_asyncio.fixture(scope="module")
async def pool(services: Settings) -> AsyncIterator[asyncpg.Pool]:
    async with scratch_database(services, "auditbooks") as p:
        yield p


async def _order(conn: asyncpg.Connection, order_id: str, state: str) -> None:
    await conn.execute(
        """INSERT INTO orders (order_id, buyer_id, currency, payment_preference, subtotal,
               discount, total, request_digest, state)
           VALUES ($1, 'buyer-audit', 'EUR', 'wallet_only', 0, 0, 0, 'test', $2)""",
        order_id,
        state,
    )


async def _posting(conn: asyncpg.Connection, order_id: str) -> None:
    await conn.execute(
        """INSERT INTO ledger_transactions (kind, order_id, idempotency_key)
           VALUES ('purchase', $1, 'purchase:' || $1)""",
        order_id,
    )


async def _fund_hold(conn: asyncpg.Connection, order_id: str, state: str) -> None:
    await conn.execute(
        """INSERT INTO fund_holds (order_id, account_id, amount, currency, state, expires_at,
               resolved_at)
           VALUES ($1, 'acct-audit', 100, 'EUR', $2, now() + interval '1 hour',
                   CASE WHEN $2 = 'held' THEN NULL ELSE now() END)""",
        order_id,
        state,
    )


async def _stock_hold(conn: asyncpg.Connection, order_id: str, state: str) -> None:
    await conn.execute(
        "INSERT INTO stock_holds (order_id, sku_id, quantity, state) VALUES ($1, 'sku-a', 1, $2)",
        order_id,
        state,
    )


async def test_a_cancelled_order_with_a_posting_or_an_open_hold_fails_the_audit(
    services: Settings, pool: asyncpg.Pool
) -> None:
    async with pool.acquire() as conn:
        for order_id in ("posted", "funds-held", "stock-held", "released"):
            await _order(conn, order_id, "cancelled")
        await _posting(conn, "posted")
        await _fund_hold(conn, "funds-held", "held")
        await _stock_hold(conn, "stock-held", "held")
        await _fund_hold(conn, "released", "cancelled")
        await _stock_hold(conn, "released", "released")
        await _order(conn, "settled", "settled")  # a posting is what a settled order has
        await _posting(conn, "settled")
        await _fund_hold(conn, "settled", "confirmed")
        await _stock_hold(conn, "settled", "sold")

        report = await run_audit(conn, services, liveness=False)

    found = sorted(v["row"]["order_id"] for v in report["violations"] if v["check"] == CHECK)
    assert found == ["funds-held", "posted", "stock-held"]
    assert report["checked"][CHECK] == 4


async def _posted(conn: asyncpg.Connection, key: str, amount: int) -> None:
    txn = await conn.fetchval(
        """INSERT INTO ledger_transactions (kind, idempotency_key) VALUES ('correction', $1)
           RETURNING ledger_txn_id""",
        key,
    )
    await conn.execute(
        """INSERT INTO ledger_entries (ledger_txn_id, debit_account_id, credit_account_id,
               amount, currency, leg)
           VALUES ($1, 'acct-a', 'acct-b', $2, 'EUR', 'test')""",
        txn,
        amount,
    )


async def _late_payment(conn: asyncpg.Connection, refund_id: str, status: str) -> None:
    await plant_payment(
        conn,
        order_id=f"ord-{refund_id}",
        transaction_id=f"txn-{refund_id}",
        payment_id=f"pay-{refund_id}",
        order_state="settled",
        status="succeeded",
        buyer="buyer-audit",
    )
    await conn.execute(
        """INSERT INTO gateway_refunds (refund_id, kind, payment_id, gateway_ref, adapter,
               amount, currency, reason, status)
           VALUES ($1, 'late_payment', 'pay-' || $1, 'gw-' || $1, 'direct', 500, 'EUR',
                   'late', $2)""",
        refund_id,
        status,
    )


async def _card_refund(conn: asyncpg.Connection, refund_id: str, status: str, cur: str) -> None:
    await conn.execute(
        """INSERT INTO refunds (refund_id, order_id, currency, reason, request_digest, status,
               amount, card_amount)
           VALUES ($1, 'ord-' || $1, $3, 'test', 'test', $2, 300, 300)""",
        refund_id,
        status,
        cur,
    )


async def _card_refunds_payable(conn: asyncpg.Connection, currency: str, total: int) -> None:
    await conn.execute(
        """INSERT INTO accounts (account_id, owner_kind, owner_id, purpose, currency, total,
               available)
           VALUES ('card-refunds-' || $1, 'platform', 'platform', 'card_refunds_payable', $1,
                   $2, $2)""",
        currency,
        total,
    )


async def test_postings_of_late_payments_and_card_refunds_are_held_to_their_amounts(
    services: Settings, pool: asyncpg.Pool
) -> None:
    async with pool.acquire() as conn:
        await _late_payment(conn, "late-returned", "succeeded")
        await _posted(conn, "late_payment:late-returned", 500)
        await _posted(conn, "late_payment_refund:late-returned", 500)
        await _late_payment(conn, "late-kept", "succeeded")  # refunded, never posted back
        await _posted(conn, "late_payment:late-kept", 500)
        await _late_payment(conn, "late-unposted", "pending")  # its arrival never posted
        await _card_refund(conn, "card-done", "completed", "EUR")
        await _posted(conn, "card_refund:card-done", 300)
        await _card_refund(conn, "card-unposted", "completed", "EUR")
        await _card_refund(conn, "card-early", "pending", "GBP")  # posted before completing
        await _posted(conn, "card_refund:card-early", 300)
        await _card_refunds_payable(conn, "GBP", 300)  # the pending GBP share: matches
        await _card_refunds_payable(conn, "USD", 100)  # nothing waits in USD

        report = await run_audit(conn, services, liveness=False)

    def found(check: str, key: str) -> list[str]:
        return sorted(v["row"][key] for v in report["violations"] if v["check"] == check)

    assert found("late_payments_posted", "refund_id") == ["late-kept", "late-unposted"]
    assert found("card_refunds_settled_once", "refund_id") == ["card-early", "card-unposted"]
    assert found("card_refunds_payable_matches", "account_id") == ["card-refunds-USD"]


def _read_whole_per_row(plan: dict[str, Any], in_subplan: bool = False) -> list[str]:
    """Tables a plan reads whole inside a subquery run once per row."""
    in_subplan = in_subplan or plan.get("Parent Relationship") == "SubPlan"
    found = [plan["Relation Name"]] if in_subplan and plan["Node Type"] == "Seq Scan" else []
    for child in plan.get("Plans", []):
        found.extend(_read_whole_per_row(child, in_subplan))
    return found


async def test_no_check_reads_a_table_once_per_row(services: Settings, pool: asyncpg.Pool) -> None:
    limits = deadlines(services)
    per_row: dict[str, list[str]] = {}
    async with pool.acquire() as conn, conn.transaction():
        # Sequential scans priced out: one is left only where no index can serve the read.
        await conn.execute("SET LOCAL enable_seqscan = off")
        for check in CHECKS:
            for sql in (check.count_sql, check.violations_sql.format(**limits)):
                raw = await conn.fetchval("EXPLAIN (FORMAT JSON) " + sql)
                tables = _read_whole_per_row(json.loads(raw)[0]["Plan"])
                if tables:
                    per_row.setdefault(check.name, []).extend(tables)
    assert per_row == {}
