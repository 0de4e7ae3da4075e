"""The references the schema leaves to their writers (migration 0023) are still checked: a
row naming something that does not exist fails the audit under that reference's check, on
a real Postgres."""

from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from infra.settings import Settings
from tests.support.services import scratch_database
from workers.ops.audit import run_audit
from workers.ops.audit_references import REFERENCES

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module")
async def pool(services: Settings) -> AsyncIterator[asyncpg.Pool]:
    """This module plants audit violations on purpose: it gets a database of its own."""
    async with scratch_database(services, "auditref") as p:
        yield p


async def _failing(pool: asyncpg.Pool, services: Settings) -> dict[str, list[object]]:
    async with pool.acquire() as conn:
        report = await run_audit(conn, services, liveness=False)
    names = {r.check().name for r in REFERENCES}
    failing: dict[str, list[object]] = {}
    for v in report["violations"]:
        if v["check"] in names:
            failing.setdefault(v["check"], []).append(v["row"]["missing"])
    return failing


async def test_dangling_references_fail_the_audit_by_name(
    services: Settings, pool: asyncpg.Pool
) -> None:
    assert await _failing(pool, services) == {}  # a fresh database is clean
    # What a writer that broke its guarantee would leave: the schema itself accepts them now.
    await pool.execute(
        """INSERT INTO order_items (sub_order_id, sku_id, quantity, unit_price, line_total)
           VALUES ('so-ghost', 'sku-ghost', 1, 100, 100)"""
    )
    await pool.execute(
        """INSERT INTO ledger_entries (ledger_txn_id, debit_account_id, credit_account_id,
                                       amount, currency, leg)
           VALUES (-1, 'acct-ghost-d', 'acct-ghost-c', 100, 'EUR', 'ghost')"""
    )
    await pool.execute(
        """INSERT INTO fund_holds (order_id, account_id, amount, currency, state, expires_at,
                                   resolved_at)
           VALUES ('ord-ghost', 'acct-ghost-h', 100, 'EUR', 'cancelled', now(), now())"""
    )
    await pool.execute(
        """INSERT INTO transactions (transaction_id, order_id, buyer_id, currency, total,
                                     wallet_part, gateway_part, status)
           VALUES ('txn-ghost', 'ord-ghost', 'buyer-ghost', 'EUR', 0, 0, 0, 'pending_payment')"""
    )
    assert await _failing(pool, services) == {
        "order_items_sub_order_id_exists": ["so-ghost"],
        "order_items_sku_id_exists": ["sku-ghost"],
        "ledger_entries_ledger_txn_id_exists": [-1],
        "ledger_entries_debit_account_id_exists": ["acct-ghost-d"],
        "ledger_entries_credit_account_id_exists": ["acct-ghost-c"],
        "fund_holds_account_id_exists": ["acct-ghost-h"],
        "transactions_order_id_exists": ["ord-ghost"],
    }


async def test_references_taken_from_events_keep_their_foreign_keys(pool: asyncpg.Pool) -> None:
    """A payment for a transaction we never recorded is refused by the schema itself."""
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await pool.execute(
            """INSERT INTO payment_requests (payment_id, transaction_id, order_id, attempt,
                                             idempotency_key, currency, amount, status,
                                             request_body)
               VALUES ('pay-ghost', 'txn-never', 'ord-never', 1, 'pay-ghost', 'EUR', 100,
                       'requesting', '{}')"""
        )
