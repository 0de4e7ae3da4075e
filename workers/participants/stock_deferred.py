"""Stock changes parked in the transaction and applied once per SKU just before the commit.

Stock rows are hot: every order holds some, every settlement sells them. Updated at once,
a row stays locked from the first order of a batch to its commit and the stages queue on
each other (and deadlock). Parked instead, each SKU is changed once per batch, in SKU
order, at the end (`flush`, from the stage's `before_commit`), so a row is locked only
from the flush to the commit. A parked change lives in a temp table, so a savepoint that
rolls back (a rejected order) takes its parked changes with it; a commit with changes
left unflushed fails, so none is ever lost.

A hold checks what is available net of the batch's own parked holds. Another batch may
take the same stock between that check and the flush: the flush then finds too little and
raises `StockMoved`, a transient error, and the batch runs again on fresh numbers.
"""

import asyncpg

from workers.runtime import temp_tables
from workers.runtime.errors import PermanentError, TransientError


class StockMoved(TransientError):
    """Stock another transaction took since the hold was checked: retry the batch."""


_TABLE = temp_tables.register(
    "deferred_stock",
    "sku_id text NOT NULL, available integer NOT NULL, held integer NOT NULL, sold integer NOT NULL",
    "stock_deferred.flush",
)

_PARK = """
INSERT INTO pg_temp.deferred_stock (sku_id, available, held, sold)
SELECT * FROM unnest($1::text[], $2::int[], $3::int[], $4::int[])"""

# Rows locked in SKU order (ORDER BY before FOR NO KEY UPDATE); a SKU the change would take below
# zero is reported back rather than failing a CHECK (which would look like a broken event).
_FLUSH = """
WITH parked AS (
    DELETE FROM pg_temp.deferred_stock RETURNING sku_id, available, held, sold
), per_sku AS (
    SELECT sku_id, sum(available) AS available, sum(held) AS held, sum(sold) AS sold
      FROM parked GROUP BY sku_id
), locked AS (
    SELECT s.sku_id, p.available, p.held, p.sold FROM stock s
      JOIN per_sku p ON p.sku_id = s.sku_id
     ORDER BY s.sku_id
       FOR NO KEY UPDATE OF s
), changed AS (
    UPDATE stock s SET available = s.available + l.available, held = s.held + l.held,
           sold = s.sold + l.sold
      FROM locked l
     WHERE s.sku_id = l.sku_id AND s.available + l.available >= 0
       AND s.held + l.held >= 0 AND s.sold + l.sold >= 0
    RETURNING s.sku_id
)
SELECT (SELECT count(*) FROM per_sku) AS wanted, (SELECT count(*) FROM changed) AS changed,
       -- Rows as they were before this statement: which bound would have been crossed.
       (SELECT count(*) FROM locked l JOIN stock s ON s.sku_id = l.sku_id
         WHERE s.held + l.held < 0 OR s.sold + l.sold < 0) AS broken"""


_AVAILABLE = """
SELECT s.sku_id, s.available + coalesce((SELECT sum(d.available) FROM pg_temp.deferred_stock d
                                          WHERE d.sku_id = s.sku_id), 0) AS available
  FROM stock s WHERE s.sku_id = ANY($1::text[])"""


async def available(conn: asyncpg.Connection, sku_ids: list[str]) -> dict[str, int]:
    """Each SKU's available stock net of this transaction's parked changes (no lock); a SKU
    without a stock row has none."""
    await _TABLE.ensure(conn)
    rows = await conn.fetch(_AVAILABLE, sorted(set(sku_ids)))
    found = {r["sku_id"]: int(r["available"]) for r in rows}
    return {s: found.get(s, 0) for s in sku_ids}


# Holds being resolved, parked per SKU as sold ($3) or back on sale, and the SKUs that do
# not hold that much (counting what was parked before this statement).
_RESOLVE = """
WITH h AS (
    UPDATE stock_holds SET state = $2, resolved_at = now()
     WHERE order_id = ANY($1::text[]) AND state = 'held'
    RETURNING sku_id, quantity),
per_sku AS (
    SELECT sku_id, sum(quantity) AS quantity FROM h GROUP BY sku_id),
parked AS (
    INSERT INTO pg_temp.deferred_stock (sku_id, available, held, sold)
    SELECT sku_id, CASE WHEN $3 THEN 0 ELSE quantity END, -quantity,
           CASE WHEN $3 THEN quantity ELSE 0 END
      FROM per_sku)
SELECT p.sku_id FROM per_sku p
 WHERE coalesce((SELECT s.held FROM stock s WHERE s.sku_id = p.sku_id), 0)
     + coalesce((SELECT sum(d.held) FROM pg_temp.deferred_stock d WHERE d.sku_id = p.sku_id), 0)
     < p.quantity
 ORDER BY p.sku_id"""


async def resolve_holds(
    conn: asyncpg.Connection, order_ids: list[str], state: str, *, sold: bool
) -> list[str]:
    """Mark the orders' open holds `state` and park their stock as sold or back on sale, in
    one statement; returns the SKUs whose stock does not cover those holds. The caller raises
    when there is one, which undoes the park with everything else of the attempt."""
    await _TABLE.ensure(conn)
    rows = await conn.fetch(_RESOLVE, sorted(order_ids), state, sold)
    return [r["sku_id"] for r in rows]


async def park(conn: asyncpg.Connection, changes: dict[str, tuple[int, int, int]]) -> None:
    """Park (available, held, sold) deltas per SKU until `flush`."""
    if not changes:
        return
    await _TABLE.ensure(conn)
    skus = sorted(changes)
    await conn.execute(
        _PARK,
        skus,
        [changes[s][0] for s in skus],
        [changes[s][1] for s in skus],
        [changes[s][2] for s in skus],
    )


async def flush(conn: asyncpg.Connection) -> int:
    """Apply every parked change, one update per SKU in SKU order; returns the SKUs changed.
    Raises StockMoved when another transaction took stock this batch counted on."""
    if not await _TABLE.exists(conn):
        return 0
    row = await conn.fetchrow(_FLUSH)
    assert row is not None
    if row["broken"]:  # held or sold below zero: the holds and the stock disagree
        raise PermanentError(
            "stock_invariant", "selling or releasing holds would take held or sold below zero"
        )
    if row["changed"] != row["wanted"]:
        raise StockMoved("stock changed under this batch's holds; running the batch again")
    return int(row["changed"])
