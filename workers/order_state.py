"""Order states move forward only: every change names the states it may leave."""

import asyncpg


async def set_order_states(
    conn: asyncpg.Connection,
    order_ids: list[str],
    state: str,
    from_states: tuple[str, ...],
    reason: str | None = None,
) -> set[str]:
    """Move orders forward only from the states given, never backwards; returns those that
    moved."""
    rows = await conn.fetch(
        """UPDATE orders SET state = $2, state_reason = coalesce($4, state_reason),
               updated_at = now()
           WHERE order_id = ANY($1::text[]) AND state = ANY($3::text[])
           RETURNING order_id""",
        sorted(order_ids),
        state,
        list(from_states),
        reason,
    )
    return {r["order_id"] for r in rows}


async def set_order_state(
    conn: asyncpg.Connection,
    order_id: str,
    state: str,
    from_states: tuple[str, ...],
    reason: str | None = None,
) -> bool:
    """Move one order forward only from the states given: never backwards."""
    return order_id in await set_order_states(conn, [order_id], state, from_states, reason)
