"""Stock holds: the stock participant of TCC (hold, then sell or release)."""

import asyncpg

from workers.tcc.barrier import Entry, Phase, enter

BRANCH = "stock"


class OutOfStock(Exception):
    def __init__(self, sku_id: str, wanted: int) -> None:
        super().__init__(f"not enough stock of {sku_id} for {wanted}")
        self.sku_id, self.wanted = sku_id, wanted


async def hold(conn: asyncpg.Connection, order_id: str, quantities: dict[str, int]) -> Entry:
    """Try. Raises OutOfStock; run it in a savepoint so the barrier row goes too."""
    entry = await enter(conn, order_id, BRANCH, Phase.TRY)
    if not entry.apply:
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
    await conn.executemany(
        "INSERT INTO stock_holds (order_id, sku_id, quantity, state) VALUES ($1, $2, $3, 'held')",
        [(order_id, sku, qty) for sku, qty in sorted(quantities.items())],
    )
    return entry


async def _resolve(conn: asyncpg.Connection, order_id: str, state: str, move: str) -> None:
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


async def sell(conn: asyncpg.Connection, order_id: str) -> Entry:
    entry = await enter(conn, order_id, BRANCH, Phase.CONFIRM)
    if entry.apply:
        await _resolve(conn, order_id, "sold", "sold")
    return entry


async def release(conn: asyncpg.Connection, order_id: str) -> Entry:
    entry = await enter(conn, order_id, BRANCH, Phase.CANCEL)
    if entry.apply:
        await _resolve(conn, order_id, "released", "available")
    return entry
