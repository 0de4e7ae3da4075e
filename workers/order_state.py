"""Order states move forward only: every change names the states it may leave."""

import asyncpg


async def set_order_state(
    conn: asyncpg.Connection,
    order_id: str,
    state: str,
    from_states: tuple[str, ...],
    reason: str | None = None,
) -> bool:
    """Move an order forward only from the states given: never backwards."""
    status = await conn.execute(
        """UPDATE orders SET state = $2, state_reason = coalesce($4, state_reason),
               updated_at = now()
           WHERE order_id = $1 AND state = ANY($3::text[])""",
        order_id,
        state,
        list(from_states),
        reason,
    )
    return bool(status == "UPDATE 1")
