"""The payment window: an order not paid in time is cancelled through TCC Cancel.

The open payment (if any) becomes `expired` with the same fenced update as a decision (never
from a decided state), and a PaymentFailed(payment_window_expired) tells settlement to
release the wallet, stock and coupon holds. The gateway charge is voided afterwards by the
sweeper's check of the expired payment (checks.py). Orders with no payment request at all,
and orders whose wallet hold expired, go the same way."""

import asyncpg
import structlog

from contracts.events.payments import PaymentFailed
from infra.settings import Settings
from workers.runtime import outbox
from workers.runtime.metrics import PAYMENTS_EXPIRED
from workers.runtime.outbox import Message
from workers.sweeper import outcomes, rules, store

log = structlog.get_logger()
PRODUCER = "sweeper"
REASON = "payment_window_expired"


async def expire(pool: asyncpg.Pool, settings: Settings, order_id: str) -> list[Message]:
    """Cancel one overdue order; returns the messages to publish (already in the outbox)."""
    key = rules.window_task_key(order_id)
    async with pool.acquire() as conn, conn.transaction():
        # Claimed in the same transaction as the effect: a concurrent replica waits on this
        # row and then finds it taken; a crash undoes both.
        if not await store.claim(conn, key, stale_s=1e9, order_id=order_id):
            return []
        if not await store.lock_open_order(conn, order_id):
            await store.finish(conn, key, "not_open")
            return []
        payment = await store.latest_payment(conn, order_id)
        if payment is not None and payment["status"] not in store.OPEN:
            # Decided (a success being settled, a failure being cancelled): not ours.
            await store.finish(conn, key, f"payment_{payment['status']}")
            return []
        detail = f"order {order_id} was not paid within its payment window"
        if payment is not None:
            evidence: dict[str, object] = {"window": "expired", "was": payment["status"]}
            if not await store.move(
                conn, payment["payment_id"], payment["fence"], "expired", store.OPEN, evidence
            ):
                await store.finish(conn, key, "raced")
                return []
            # Void it at the gateway on the sweeper's next pass.
            await store.note_check(conn, payment["payment_id"], payment["checks"], 0.0, None)
        payload = await outcomes.decision_payload(conn, order_id, REASON, detail)
        event = PaymentFailed.new(order_id, payload, idempotency_key=f"{key}/failed")
        await store.finish(conn, key, "expired")
        messages = await outbox.store(conn, PRODUCER, None, [event])
    PAYMENTS_EXPIRED.inc()
    log.info("payment_window_expired", order_id=order_id)
    return messages
