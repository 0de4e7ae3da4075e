"""Coupon grants: the coupon participant of TCC (lock, then use or return)."""

import asyncpg

from workers.tcc.barrier import Entry, Phase, enter

BRANCH = "coupons"


class CouponUnavailable(Exception):
    pass


async def lock(conn: asyncpg.Connection, order_id: str, grant_ids: list[str]) -> Entry:
    """Try. Raises CouponUnavailable; run it in a savepoint so the barrier row goes too."""
    entry = await enter(conn, order_id, BRANCH, Phase.TRY)
    if not entry.apply:
        return entry
    for grant_id in sorted(grant_ids):
        status = await conn.execute(
            """UPDATE coupon_grants SET state = 'locked', order_id = $2, updated_at = now()
               WHERE grant_id = $1 AND state = 'available'""",
            grant_id,
            order_id,
        )
        if status != "UPDATE 1":
            raise CouponUnavailable(grant_id)
    return entry


async def use(conn: asyncpg.Connection, order_id: str) -> Entry:
    entry = await enter(conn, order_id, BRANCH, Phase.CONFIRM)
    if entry.apply:
        await conn.execute(
            """UPDATE coupon_grants SET state = 'used', updated_at = now()
               WHERE order_id = $1 AND state = 'locked'""",
            order_id,
        )
    return entry


async def give_back(conn: asyncpg.Connection, order_id: str) -> Entry:
    entry = await enter(conn, order_id, BRANCH, Phase.CANCEL)
    if entry.apply:
        await conn.execute(
            """UPDATE coupon_grants SET state = 'available', order_id = NULL, updated_at = now()
               WHERE order_id = $1 AND state = 'locked'""",
            order_id,
        )
    return entry
