"""Order states move forward only: every change names the states it may leave."""

import asyncpg


async def set_order_states(
    conn: asyncpg.Connection,
    order_ids: list[str],
    state: str,
    from_states: tuple[str, ...],
    reason: str | None = None,
) -> int:
    """Move orders forward only from the states given, never backwards; returns how many
    moved."""
    status = await conn.execute(
        """UPDATE orders SET state = $2, state_reason = coalesce($4, state_reason),
               updated_at = now()
           WHERE order_id = ANY($1::text[]) AND state = ANY($3::text[])""",
        sorted(order_ids),
        state,
        list(from_states),
        reason,
    )
    return int(status.split()[-1])


async def set_order_state(
    conn: asyncpg.Connection,
    order_id: str,
    state: str,
    from_states: tuple[str, ...],
    reason: str | None = None,
) -> bool:
    """Move one order forward only from the states given: never backwards."""
    return await set_order_states(conn, [order_id], state, from_states, reason) == 1
