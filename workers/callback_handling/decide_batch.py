"""Callback handling's usual case for a whole batch at once: a verified answer that decides
an open order payment for the amount we asked, the only callback of the batch for its
payment, charge and callback id. Read with one query per table (replays, the payments
locked, charges seen) and written with one statement per table (charges, decisions, order
states, the callback records) instead of about seven statements per callback.

Everything else (a replay, a late or second charge, a disputed amount, a top-up, a refund
answer, a forged or unmatched callback) is left to `CallbackHandling.handle`, one by one.
The writes run in one savepoint: if one fails, all of them are undone and each callback
goes one by one, where the failure is pinned on its event.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from redis.asyncio import Redis

from contracts.envelope import Envelope
from contracts.events.gateway import GatewayCallbackReceived
from contracts.money import Money
from workers.callback_handling import store
from workers.callback_handling.decision import AWAITING_PAYMENT, order_decided
from workers.callback_handling.verify import verified_notice
from workers.gateway.port import Notice
from workers.late_payments import records, rules
from workers.order_state import set_order_states
from workers.runtime import locks
from workers.runtime.at_once import MIN_EVENTS, Answers, answer_at_once, answered

_NAME = "callback_handling.decisions"


@dataclass(frozen=True)
class Verifier:
    keys: dict[str, str]
    tolerance_s: int
    now: float


@dataclass(frozen=True)
class _Usual:
    event: GatewayCallbackReceived
    notice: Notice
    req: store.PaymentRequest


async def decide_batch(
    tx: asyncpg.Connection, redis: Redis, verifier: Verifier, events: Sequence[Envelope]
) -> None:
    """Decide what can be decided at once; `decided` then answers for each such event."""
    found: list[tuple[GatewayCallbackReceived, Notice]] = []
    for e in events:
        if not isinstance(e, GatewayCallbackReceived):
            continue
        try:
            notice = verified_notice(e.payload, verifier.keys, verifier.tolerance_s, verifier.now)
        except Exception:  # `handle` dead-letters it, saying why
            continue
        if notice.kind == "payment":
            found.append((e, notice))
    # One callback per payment, charge and callback id: nothing else of the batch can then
    # change what was read for it.
    alone = Counter(k for e, n in found for k in _keys(e, n))
    candidates = [(e, n) for e, n in found if all(alone[k] == 1 for k in _keys(e, n))]
    if len(candidates) < MIN_EVENTS:
        return
    # As `handle` does: held until the batch's transaction ends.
    await locks.held_for_batch_all(redis, [f"payment:{n.payment_id}" for _, n in candidates])
    replays = await store.callbacks_decided_before(
        tx, [(e.payload.provider, n.callback_id) for e, n in candidates]
    )
    reqs = await store.lock_requests(tx, sorted({n.payment_id for _, n in candidates}))
    seen = await records.charges_seen(
        tx, [n.gateway_ref for _, n in candidates if n.status == "succeeded"]
    )
    usual = [
        _Usual(e, n, reqs[n.payment_id])
        for e, n in candidates
        if (e.payload.provider, n.callback_id) not in replays
        and n.payment_id in reqs
        and _usual(reqs[n.payment_id], n, n.gateway_ref in seen)
    ]
    if len(usual) < MIN_EVENTS:
        return
    await answer_at_once(tx, _NAME, lambda: _decide(tx, usual))


def decided(event: Envelope) -> list[Envelope] | None:
    """What the event publishes if it was handled here; None: handle it."""
    return answered(_NAME, event)


def _keys(e: GatewayCallbackReceived, n: Notice) -> tuple[str, ...]:
    return (f"p:{n.payment_id}", f"g:{n.gateway_ref}", f"c:{e.payload.provider}:{n.callback_id}")


def _usual(req: store.PaymentRequest, n: Notice, seen: bool) -> bool:
    """An order payment this answer decides, for the amount we asked."""
    if req.order_id is None or n.amount != Money(amount=req.amount, currency=req.currency):
        return False
    state = rules.PaymentState(req.status, req.gateway_ref, req.order_state)
    succeeded = n.status == "succeeded"
    return rules.payment_verdict(state, succeeded, n.gateway_ref, succeeded and seen) == "applied"


async def _decide(tx: asyncpg.Connection, usual: list[_Usual]) -> Answers:
    await records.record_charges(
        tx,
        [
            records.Charge(
                u.req.payment_id,
                u.notice.gateway_ref,
                u.notice.amount.amount,
                u.notice.amount.currency,
                u.notice.status,
                "callback",
            )
            for u in usual
        ],
    )
    moved = await store.decide_many(
        tx, [(u.req, u.notice.status, u.notice.gateway_ref) for u in usual]
    )
    if len(moved) != len(usual):  # cannot happen under the row locks: undo, one by one
        raise RuntimeError(f"{len(usual) - len(moved)} payments did not move")
    paid = [u.req.order_id for u in usual if u.notice.status == "succeeded" and u.req.order_id]
    await set_order_states(tx, paid, "paid", AWAITING_PAYMENT)
    await store.record_callbacks(
        tx,
        [
            store.CallbackRecord(
                u.event, u.event.payload, u.notice, "applied", u.notice.failure_reason
            )
            for u in usual
        ],
    )
    return {
        u.event.event_id: [
            order_decided(u.event, u.req, u.notice, u.notice.status, u.notice.failure_reason)
        ]
        for u in usual
    }
