"""Coupon grants: the coupon participant of TCC (lock, then use or return)."""

import asyncpg

from workers.tcc import barrier
from workers.tcc.barrier import Entry, Phase, enter

BRANCH = "coupons"


class CouponUnavailable(Exception):
    pass


async def lock(conn: asyncpg.Connection, order_id: str, grant_ids: list[str]) -> Entry:
    """Try. Raises CouponUnavailable; run it in a savepoint so the barrier row goes too."""
    entry = await enter(conn, order_id, BRANCH, Phase.TRY)
    if not entry.apply:
        return entry
    taken = sorted(set(grant_ids) - await lock_many(conn, dict.fromkeys(grant_ids, order_id)))
    if taken:
        raise CouponUnavailable(taken[0])
    return entry


async def lock_many(conn: asyncpg.Connection, grants: dict[str, str]) -> set[str]:
    """Try's effect for a batch whose barrier rows are written (barrier.try_many): grant id ->
    order id. The grants locked; one missing was taken by another order meanwhile."""
    if not grants:
        return set()
    ids = sorted(grants)
    rows = await conn.fetch(
        """UPDATE coupon_grants g SET state = 'locked', order_id = u.o, updated_at = now()
             FROM unnest($1::text[], $2::text[]) AS u(g, o)
            WHERE g.grant_id = u.g AND g.state = 'available' RETURNING g.grant_id""",
        ids,
        [grants[g] for g in ids],
    )
    return {r["grant_id"] for r in rows}


async def unlock(conn: asyncpg.Connection, order_ids: list[str]) -> None:
    """The orders' locked grants available again: Cancel's effect, and the undoing of
    lock_many for orders turned down after it (their Try rows go with forget_tries)."""
    if order_ids:
        await conn.execute(
            """UPDATE coupon_grants SET state = 'available', order_id = NULL, updated_at = now()
               WHERE order_id = ANY($1::text[]) AND state = 'locked'""",
            order_ids,
        )


async def with_locked(conn: asyncpg.Connection, order_ids: list[str]) -> set[str]:
    """The orders (of these) holding a locked grant."""
    rows = await conn.fetch(
        """SELECT DISTINCT order_id FROM coupon_grants
            WHERE order_id = ANY($1::text[]) AND state = 'locked'""",
        order_ids,
    )
    return {r["order_id"] for r in rows}


async def use(conn: asyncpg.Connection, order_id: str, *, locked: bool | None = None) -> Entry:
    """Confirm: the order's locked grants are used (`locked` False, read for the batch
    already: it holds none, so there is nothing to update)."""
    entry = await enter(conn, order_id, BRANCH, Phase.CONFIRM)
    if entry.apply and locked is not False:
        await _use(conn, [order_id])
    return entry


async def use_many(conn: asyncpg.Connection, order_ids: list[str], locked: set[str]) -> set[str]:
    """Confirm for many orders (`locked`: those of them holding a locked grant, read for the
    batch): the orders whose Confirm applied. Any other order wrote nothing: `use` decides it."""
    applied = await barrier.confirm_many(conn, order_ids, BRANCH)
    await _use(conn, sorted(applied & locked))
    return applied


async def _use(conn: asyncpg.Connection, order_ids: list[str]) -> None:
    if order_ids:
        await conn.execute(
            """UPDATE coupon_grants SET state = 'used', updated_at = now()
               WHERE order_id = ANY($1::text[]) AND state = 'locked'""",
            order_ids,
        )


async def give_back(conn: asyncpg.Connection, order_id: str) -> Entry:
    entry = await enter(conn, order_id, BRANCH, Phase.CANCEL)
    if entry.apply:
        await unlock(conn, [order_id])
    return entry


async def give_back_many(conn: asyncpg.Connection, order_ids: list[str]) -> dict[str, Entry | None]:
    """Cancel for many orders: each order's verdict, its grants available again where it
    applied; None where `give_back` must decide (nothing written)."""
    entries = await barrier.cancel_many(conn, order_ids, BRANCH)
    await unlock(conn, sorted(o for o, e in entries.items() if e and e.apply))
    return entries
