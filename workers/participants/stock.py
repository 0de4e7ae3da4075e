"""Stock holds: the stock participant of TCC (hold, then sell or release)."""

import asyncpg

from workers.participants import stock_deferred
from workers.tcc.barrier import Entry, Phase, enter

BRANCH = "stock"


class HeldStockMissing(Exception):
    """The stock row holds less than the order's hold: the two disagree (an invariant)."""


class OutOfStock(Exception):
    def __init__(self, sku_id: str, wanted: int) -> None:
        super().__init__(f"not enough stock of {sku_id} for {wanted}")
        self.sku_id, self.wanted = sku_id, wanted


async def hold(
    conn: asyncpg.Connection, order_id: str, quantities: dict[str, int], *, defer: bool = False
) -> Entry:
    """Try. Raises OutOfStock; run it in a savepoint so the barrier row goes too. With
    `defer`, the stock rows change at `stock_deferred.flush` (the caller's before_commit)."""
    entry = await enter(conn, order_id, BRANCH, Phase.TRY)
    if not entry.apply:
        return entry
    if defer:
        short = await stock_deferred.short_of(conn, quantities)
        if short:
            raise OutOfStock(short[0], quantities[short[0]])
        await stock_deferred.park(conn, {s: (-q, q, 0) for s, q in quantities.items()})
        await _record_holds(conn, order_id, quantities)
        return entry
    for sku_id in sorted(quantities):  # fixed order: concurrent holds never deadlock
        qty = quantities[sku_id]
        status = await conn.execute(
            """UPDATE stock SET available = available - $2, held = held + $2
               WHERE sku_id = $1 AND available >= $2""",
            sku_id,
            qty,
        )
        if status != "UPDATE 1":
            raise OutOfStock(sku_id, qty)
    await _record_holds(conn, order_id, quantities)
    return entry


async def hold_parked(conn: asyncpg.Connection, holds: dict[str, dict[str, int]]) -> None:
    """The holds of many orders whose Try applied and whose stock the caller counted (from
    `stock_deferred.available`): parked until `stock_deferred.flush`, in two statements."""
    if not holds:
        return
    changes: dict[str, tuple[int, int, int]] = {}
    for quantities in holds.values():
        for sku, q in quantities.items():
            a, h, _ = changes.get(sku, (0, 0, 0))
            changes[sku] = (a - q, h + q, 0)
    await stock_deferred.park(conn, changes)
    rows = [(o, s, q) for o, qs in sorted(holds.items()) for s, q in sorted(qs.items())]
    await conn.execute(
        """INSERT INTO stock_holds (order_id, sku_id, quantity, state)
           SELECT o, s, q, 'held' FROM unnest($1::text[], $2::text[], $3::int[]) AS u(o, s, q)""",
        [o for o, _, _ in rows],
        [s for _, s, _ in rows],
        [q for _, _, q in rows],
    )


async def _record_holds(
    conn: asyncpg.Connection, order_id: str, quantities: dict[str, int]
) -> None:
    skus = sorted(quantities)
    await conn.execute(
        """INSERT INTO stock_holds (order_id, sku_id, quantity, state)
           SELECT $1, s, q, 'held' FROM unnest($2::text[], $3::int[]) AS u(s, q)""",
        order_id,
        skus,
        [quantities[s] for s in skus],
    )


async def _resolve(
    conn: asyncpg.Connection, order_id: str, state: str, move: str, defer: bool
) -> None:
    if defer:
        rows = await stock_deferred.resolve_holds(conn, order_id, state, sold=move == "sold")
        missing = sorted(r["sku_id"] for r in rows if not r["covered"])
        if missing:
            raise HeldStockMissing(
                f"stock of {', '.join(missing)} holds less than this order's hold"
            )
        return
    rows = await conn.fetch(
        """UPDATE stock_holds SET state = $2, resolved_at = now()
           WHERE order_id = $1 AND state = 'held' RETURNING sku_id, quantity""",
        order_id,
        state,
    )
    for r in sorted(rows, key=lambda r: str(r["sku_id"])):
        await conn.execute(
            f"UPDATE stock SET held = held - $2, {move} = {move} + $2 WHERE sku_id = $1",
            r["sku_id"],
            r["quantity"],
        )


async def sell(conn: asyncpg.Connection, order_id: str, *, defer: bool = False) -> Entry:
    entry = await enter(conn, order_id, BRANCH, Phase.CONFIRM)
    if entry.apply:
        await _resolve(conn, order_id, "sold", "sold", defer)
    return entry


async def release(conn: asyncpg.Connection, order_id: str, *, defer: bool = False) -> Entry:
    entry = await enter(conn, order_id, BRANCH, Phase.CANCEL)
    if entry.apply:
        await _resolve(conn, order_id, "released", "available", defer)
    return entry
