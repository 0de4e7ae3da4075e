"""Settlement's Cancel for a whole batch at once: the failed payments of orders that have
one event in the batch are cancelled with a few statements for all of them (each
participant's Cancel, the transaction and order states) instead of about ten per order.

All of it runs in one savepoint (`answer_at_once`). An order whose funds Cancel the barrier
cannot decide in one statement (a duplicate, a Cancel after Confirm, a Try in flight)
wrote nothing here and is left to `Settlement.handle`, one by one, as before; so is every
order of the batch if anything here fails.
"""

from collections import defaultdict
from collections.abc import Sequence

import asyncpg

from contracts.envelope import Envelope
from contracts.events.payments import PaymentFailed
from workers.order_state import set_order_states
from workers.participants import coupons, funds, stock
from workers.runtime.at_once import MIN_EVENTS, Answers, answer_at_once, answered
from workers.settlement import outcomes, prefetch, store

_NAME = "settlement.cancel"


async def cancel_batch(tx: asyncpg.Connection, events: Sequence[Envelope]) -> None:
    """Cancel what can be cancelled at once; `cancelled` then answers for each event."""
    failed = prefetch.alone(events, PaymentFailed)
    if len(failed) >= MIN_EVENTS:
        await answer_at_once(tx, _NAME, lambda: _cancel(tx, failed))


def cancelled(event: Envelope) -> list[Envelope] | None:
    """What the event publishes if it was cancelled here; None: handle it."""
    return answered(_NAME, event)


async def _cancel(tx: asyncpg.Connection, failed: list[PaymentFailed]) -> Answers:
    by_order = {e.payload.order_id: e for e in failed}
    # The funds decide: where their Cancel applies (or finds no Try), the order is cancelled.
    going = sorted(o for o, entry in (await funds.cancel_many(tx, list(by_order))).items() if entry)
    if not going:
        return {}
    # Stock and coupons follow whatever their own verdict; an unusual one takes the slow path.
    for order_id, entry in (await stock.release_many(tx, going)).items():
        if entry is None:
            await stock.release(tx, order_id, defer=True)
    for order_id, entry in (await coupons.give_back_many(tx, going)).items():
        if entry is None:
            await coupons.give_back(tx, order_id)
    by_reason: dict[str, list[str]] = defaultdict(list)
    for order_id in going:
        by_reason[outcomes.cancel_reason(by_order[order_id].payload)].append(order_id)
    for reason, order_ids in sorted(by_reason.items()):
        txns = [by_order[o].payload.transaction_id for o in order_ids]
        await store.set_transaction_statuses(tx, txns, "cancelled", reason)
        await set_order_states(tx, order_ids, "cancelled", outcomes.OPEN, reason)
    return {by_order[o].event_id: [outcomes.cancelled(by_order[o])] for o in going}
