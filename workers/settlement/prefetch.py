"""What settlement reads for a batch's successful payments at once, before it handles them
one by one: our records of each payment, each transaction's details, expired holds and
locked coupon grants.

Only for an order that has a single event in the batch: nothing another event of the batch
writes can then change what was read for it (an order's rows change only with its own
events). Any other event, or a run without this read, reads for itself.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import asyncpg

from contracts.envelope import Envelope
from contracts.events.payments import PaymentDecisionPayload, PaymentSucceeded
from workers.participants import coupons, funds
from workers.runtime.stage import current_batch
from workers.settlement import store

_KEY = "settlement.prefetched"
E = TypeVar("E", bound=Envelope)
Decision = tuple[str, str, str | None]  # transaction id, order id, gateway ref


@dataclass(frozen=True)
class Prefetched:
    paid: dict[Decision, store.Paid]
    details: dict[str, list[asyncpg.Record]]  # by transaction id
    expired: set[str]  # order ids with an expired hold
    coupons: set[str]  # order ids holding a locked grant


def _decision(p: PaymentDecisionPayload) -> Decision:
    return (p.transaction_id, p.order_id, p.gateway_ref)


def alone(events: Sequence[Envelope], kind: type[E]) -> list[E]:
    """The events of `kind` whose order has no other event in the batch: what is read or
    done for them at once no other event of the batch can change."""
    per_order = Counter(e.correlation_id for e in events)
    return [e for e in events if isinstance(e, kind) and per_order[e.correlation_id] == 1]


async def prefetch(events: list[Envelope], tx: asyncpg.Connection) -> None:
    paid = [e.payload for e in alone(events, PaymentSucceeded)]
    if not paid:
        return
    current_batch().resources[_KEY] = Prefetched(
        await store.paid_transactions(tx, [_decision(p) for p in paid]),
        await store.details(tx, [p.transaction_id for p in paid]),
        await funds.expired_holds(tx, [p.order_id for p in paid]),
        await coupons.with_locked(tx, [p.order_id for p in paid]),
    )


def _found() -> Prefetched | None:
    try:
        found = current_batch().resources.get(_KEY)
    except RuntimeError:  # no batch: called on its own (a test, a tool)
        return None
    return found if isinstance(found, Prefetched) else None


async def paid_transaction(tx: asyncpg.Connection, p: PaymentDecisionPayload) -> store.Paid:
    pre = _found()
    if pre is not None and _decision(p) in pre.paid:
        return pre.paid[_decision(p)]
    return (await store.paid_transactions(tx, [_decision(p)]))[_decision(p)]


async def details(tx: asyncpg.Connection, transaction_id: str) -> list[asyncpg.Record]:
    pre = _found()
    if pre is not None and transaction_id in pre.details:
        return pre.details[transaction_id]
    return (await store.details(tx, [transaction_id]))[transaction_id]


def expired(p: PaymentDecisionPayload) -> bool | None:
    """Whether the order's hold had expired when the batch began; None: not read."""
    pre = _found()
    if pre is None or _decision(p) not in pre.paid:
        return None
    return p.order_id in pre.expired


def coupons_locked(p: PaymentDecisionPayload) -> bool | None:
    """Whether the order held a locked grant when the batch began; None: not read."""
    pre = _found()
    if pre is None or _decision(p) not in pre.paid:
        return None
    return p.order_id in pre.coupons
