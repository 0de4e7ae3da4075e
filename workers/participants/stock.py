"""Stock holds: the stock participant of TCC (hold, then sell or release)."""

from collections.abc import Mapping

import asyncpg

from workers.participants import stock_deferred
from workers.tcc import barrier
from workers.tcc.barrier import Entry, Phase, enter

BRANCH = "stock"


class HeldStockMissing(Exception):
    """The stock row holds less than the order's hold: the two disagree (an invariant)."""


class OutOfStock(Exception):
    def __init__(self, sku_id: str, wanted: int) -> None:
        super().__init__(f"not enough stock of {sku_id} for {wanted}")
        self.sku_id, self.wanted = sku_id, wanted


def first_short(quantities: Mapping[str, int], available: Mapping[str, int]) -> str | None:
    """The first SKU (in SKU order) with less available than wanted; None: all can be held."""
    return next((s for s in sorted(quantities) if available.get(s, 0) < quantities[s]), None)


async def hold(conn: asyncpg.Connection, order_id: str, quantities: dict[str, int]) -> Entry:
    """Try. Raises OutOfStock; run it in a savepoint so the barrier row goes too. The stock
    rows change at `stock_deferred.flush` (the caller's before_commit)."""
    entry = await enter(conn, order_id, BRANCH, Phase.TRY)
    if not entry.apply:
        return entry
    short = first_short(quantities, await stock_deferred.available(conn, list(quantities)))
    if short is not None:
        raise OutOfStock(short, quantities[short])
    await hold_parked(conn, {order_id: quantities})
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


async def _resolve(
    conn: asyncpg.Connection, order_id: str, state: str, move: str, defer: bool
) -> None:
    if defer:
        await _resolve_parked(conn, [order_id], state, sold=move == "sold")
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


async def _resolve_parked(
    conn: asyncpg.Connection, order_ids: list[str], state: str, *, sold: bool
) -> None:
    short = await stock_deferred.resolve_holds(conn, order_ids, state, sold=sold)
    if short:  # raised, so the attempt (or the savepoint) takes the park back too
        raise HeldStockMissing(f"stock of {', '.join(short)} holds less than these orders' holds")


async def sell_many(conn: asyncpg.Connection, order_ids: list[str]) -> set[str]:
    """Confirm for many orders, parked until `stock_deferred.flush`: the orders whose Confirm
    applied, their holds sold. Any other order wrote nothing: `sell` decides it."""
    applied = await barrier.confirm_many(conn, order_ids, BRANCH)
    if applied:
        await _resolve_parked(conn, sorted(applied), "sold", sold=True)
    return applied


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


async def release_many(conn: asyncpg.Connection, order_ids: list[str]) -> dict[str, Entry | None]:
    """Cancel for many orders, parked until `stock_deferred.flush`: each order's verdict, its
    holds back on sale where it applied; None where `release` must decide (nothing written)."""
    entries = await barrier.cancel_many(conn, order_ids, BRANCH)
    applied = sorted(o for o, e in entries.items() if e and e.apply)
    if applied:
        await _resolve_parked(conn, applied, "released", sold=False)
    return entries
