"""Settlement's usual case for a whole batch at once: the successful payments of orders
that have one event in the batch, verified and adding up, are sold with a few statements
for all of them (each participant's Confirm, the purchase postings, the states) instead of
about ten per order.

All of it runs in one savepoint. An order the barrier does not let in (a duplicate, a
Confirm after Cancel), an expired hold, numbers that do not add up: that order is left to
`Settlement.handle`, one by one, as before. Anything that fails inside the savepoint (holds
or balances that disagree) undoes the whole sale, and each of its orders goes one by one,
where the failure is pinned on its order and sent to review.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from contracts.envelope import Envelope
from contracts.events.payments import PaymentDecisionPayload, PaymentSucceeded
from workers.ledger import postings
from workers.order_state import set_order_states
from workers.participants import coupons, funds, stock
from workers.runtime.at_once import MIN_EVENTS, Answers, answer_at_once, answered
from workers.runtime.errors import PermanentError
from workers.settlement import outcomes, prefetch, purchase, store

_NAME = "settlement.sale"


@dataclass(frozen=True)
class _Sale:
    event: PaymentSucceeded
    payment: PaymentDecisionPayload  # as our records hold it
    bought: purchase.Purchase


async def sell_batch(tx: asyncpg.Connection, events: Sequence[Envelope]) -> None:
    """Sell what can be sold at once (after `prefetch.prefetch`); `sold` then answers for
    each event sold here."""
    sales: list[_Sale] = []
    for e in events:
        if not isinstance(e, PaymentSucceeded) or prefetch.expired(e.payload) is not False:
            continue
        try:
            p = await purchase.verified(tx, e.payload)
        except PermanentError:
            continue  # `handle` dead-letters it
        bought = await purchase.build(tx, p)
        if not bought.problems:
            sales.append(_Sale(e, p, bought))
    if len(sales) < MIN_EVENTS:
        return
    await answer_at_once(tx, _NAME, lambda: _sell(tx, sales))


def sold(event: Envelope) -> list[Envelope] | None:
    """What the event publishes if it was handled here; None: handle it."""
    return answered(_NAME, event)


async def _sell(tx: asyncpg.Connection, sales: list[_Sale]) -> Answers:
    by_order = {s.payment.order_id: s for s in sales}
    held = await funds.confirm_many(tx, list(by_order))
    for order_id, holds in held.items():
        wallet_part = by_order[order_id].payment.wallet_part
        if sum(h.amount for h in holds) != wallet_part.amount:
            raise purchase.Broken(f"{order_id}: held {holds} does not match {wallet_part}")
    mine = [by_order[o] for o in sorted(held)]
    ids = [s.payment.order_id for s in mine]
    await stock.sell_many(tx, ids)
    locked = {s.payment.order_id for s in mine if prefetch.coupons_locked(s.payment) is not False}
    await coupons.use_many(tx, ids, locked)
    await postings.post_many(tx, [purchase.posting(s.payment, s.bought) for s in mine], defer=True)
    await store.set_transaction_statuses(tx, [s.payment.transaction_id for s in mine], "settled")
    await set_order_states(tx, ids, "settled", outcomes.OPEN)
    return {
        s.event.event_id: [outcomes.settled(s.event, s.payment, s.bought.payouts)] for s in mine
    }
