"""Gateway request records a batch's answers with the payment rows locked in order-id order,
the order callback handling locks them in: otherwise a callback arriving with its answer
could lock the same two rows the other way round (a deadlock, seen once in the benchmark).
Shown here without timing: while the answers wait for a later payment's row, the earlier
payment's row is already theirs."""

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from tests.support.gateway_edge import plant_payment
from workers.payments.records import record_answers
from workers.payments.rules import Asked

pytestmark = pytest.mark.integration


async def _waiting_for_a_lock(pool: asyncpg.Pool, pid: int) -> bool:
    for _ in range(200):
        kind = await pool.fetchval(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid
        )
        if kind == "Lock":
            return True
        await asyncio.sleep(0.02)
    return False


async def test_answers_lock_payments_in_order_id_order(pool: asyncpg.Pool) -> None:
    run = uuid.uuid4().hex[:8]
    early, late = f"plo-{run}-a", f"plo-{run}-b"
    async with pool.acquire() as conn, conn.transaction():
        for order in (late, early):  # stored in the other order too
            await plant_payment(
                conn,
                order_id=order,
                transaction_id=f"tx-{order}",
                payment_id=f"pay-{order}",
                order_state="payment_requested",
                status="requesting",
                buyer=f"plo-{run}",
            )
    asked = Asked("accepted", [{"status": 201, "response": "{}"}])
    now = datetime.now(UTC)

    async with pool.acquire() as other, pool.acquire() as writer:
        holding = other.transaction()
        await holding.start()
        await other.execute(
            "SELECT 1 FROM payment_requests WHERE payment_id = $1 FOR NO KEY UPDATE", f"pay-{late}"
        )
        writing = writer.transaction()
        await writing.start()
        # The later payment first, as a batch may list them.
        task = asyncio.create_task(
            record_answers(writer, [(f"pay-{late}", asked, now), (f"pay-{early}", asked, now)])
        )
        try:
            assert await _waiting_for_a_lock(pool, writer.get_server_pid())
            # The earlier row is held by the waiting writer: taken before the later one.
            with pytest.raises(asyncpg.LockNotAvailableError):
                await other.execute(
                    "SELECT 1 FROM payment_requests WHERE payment_id = $1 FOR NO KEY UPDATE NOWAIT",
                    f"pay-{early}",
                )
        finally:
            await holding.rollback()
            await task
            await writing.rollback()
