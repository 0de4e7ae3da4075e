"""A stock hold's and a transaction's state change stays on the row's page (a HOT update:
no new index entry), even when a whole batch of rows written together changes at once, as
order build writes holds and fund freeze transactions, and settlement resolves them
(migration 0027). Each test's rows are rolled back."""

import uuid

import asyncpg
import pytest

from workers.participants import stock_deferred
from workers.settlement.store import set_transaction_statuses

pytestmark = pytest.mark.integration

BATCH = 300  # a large stage batch: rows written in one statement fill whole pages


async def _updates(conn: asyncpg.Connection, table: str) -> tuple[int, int]:
    """(updates, HOT updates) of `table` in this transaction so far."""
    row = await conn.fetchrow(
        """SELECT pg_stat_get_xact_tuples_updated($1::regclass) AS updated,
                  pg_stat_get_xact_tuples_hot_updated($1::regclass) AS hot""",
        table,
    )
    assert row is not None
    return int(row["updated"]), int(row["hot"])


async def test_a_batch_of_stock_holds_is_resolved_in_place(conn: asyncpg.Connection) -> None:
    tag = uuid.uuid4().hex[:10]
    orders = [f"hot-{tag}-{i:04d}" for i in range(BATCH)]
    await conn.execute(
        """INSERT INTO stock_holds (order_id, sku_id, quantity, state)
           SELECT o, s, 1, 'held' FROM unnest($1::text[]) AS o,
                  unnest(ARRAY['sku-hot-a', 'sku-hot-b']) AS s""",
        orders,
    )
    before = await _updates(conn, "stock_holds")
    await stock_deferred.resolve_holds(conn, orders, "sold", sold=True)
    after = await _updates(conn, "stock_holds")
    updated, hot = after[0] - before[0], after[1] - before[1]
    assert updated == 2 * BATCH
    assert hot == updated  # on a filled page (fillfactor 100) most went to another page


async def test_a_batch_of_transactions_changes_status_in_place(
    conn: asyncpg.Connection,
) -> None:
    tag = uuid.uuid4().hex[:10]
    ids = [f"tx-hot-{tag}-{i:04d}" for i in range(BATCH)]
    await conn.execute(
        """INSERT INTO transactions (transaction_id, order_id, buyer_id, currency, total,
                                     wallet_part, gateway_part, status)
           SELECT id, 'o-' || id, 'buyer-hot', 'EUR', 2500, 0, 2500, 'pending_payment'
             FROM unnest($1::text[]) AS id""",
        ids,
    )
    before = await _updates(conn, "transactions")
    assert await set_transaction_statuses(conn, ids, "paid") == BATCH
    after = await _updates(conn, "transactions")
    updated, hot = after[0] - before[0], after[1] - before[1]
    assert updated == BATCH
    assert hot == updated
