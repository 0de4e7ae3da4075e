"""Order build for a whole batch: the usual submissions together, the rest one by one.

The usual submission is a new purchase: an order id never answered, a key nobody holds,
neither repeated in the batch, and coupons (if any) that each have a grant left for it once
the buyer's coupon orders before it in the batch have taken theirs. Those are judged with
one query and one claim, priced from one catalogue and one grant read, and their coupons
locked, stock held and orders saved with one statement per table; their stock is counted in
the batch's order, so each order is held or rejected as if it had been built alone after
the ones before it. Everything else (a submission seen before, a key in use, an order id or
key twice in the batch, a code named twice, a coupon without a grant left for it) goes the
one-by-one way afterwards, where it sees what the usual ones wrote.
"""

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import asyncpg

from contracts.envelope import Envelope
from contracts.events.orders import OrderSubmitted
from workers.order_build import answers, catalogue, store
from workers.order_build.idempotency import Submission
from workers.order_build.pricing import PricedOrder, price_order
from workers.order_build.rules import (
    Coupon,
    Rejection,
    check_payment_method,
    wanted_quantities,
)
from workers.participants import coupons, stock, stock_deferred
from workers.runtime.errors import is_transient
from workers.runtime.stage import EventFailed
from workers.tcc.barrier import Verdict, forget_tries, try_many

if TYPE_CHECKING:
    from workers.order_build.step import OrderBuild


async def build_batch(
    stage: "OrderBuild", events: list[OrderSubmitted], tx: asyncpg.Connection
) -> list[Sequence[Envelope]]:
    subs = [Submission.of(e) for e in events]
    ids = Counter(s.order_id for s in subs)
    keys = Counter(s.idempotency_key for s in subs)
    bound = await store.order_bindings(tx, list(ids))
    fresh = [
        i
        for i, s in enumerate(subs)
        if s.order_id not in bound and ids[s.order_id] == keys[s.idempotency_key] == 1
    ]
    fresh, grants = await _with_coupons(tx, events, fresh)
    claimed = await store.claim_keys(tx, [subs[i] for i in fresh], stage.retention_h)
    usual = [i for i in fresh if subs[i].idempotency_key in claimed]
    outputs: dict[int, Sequence[Envelope]] = await _new_purchases(
        stage, tx, events, subs, usual, grants
    )
    for i, event in enumerate(events):
        if i in outputs:
            continue
        try:
            outputs[i] = await stage.handle(event, tx, None)
        except Exception as exc:
            if is_transient(exc):
                raise
            raise EventFailed(event.event_id, exc) from exc
    return [outputs[i] for i in range(len(events))]


async def _with_coupons(
    tx: asyncpg.Connection, events: list[OrderSubmitted], fresh: list[int]
) -> tuple[list[int], dict[int, list[Coupon]]]:
    """Of the fresh submissions, those that go with the batch, and the grants of their
    coupons. A buyer's coupon orders take that buyer's grants of each code oldest first, in
    the batch's order, as if built one after the other; an order whose code has no grant
    left for it, or that names a code twice, goes one by one, where it is explained (and
    sees any grant an order before it gave back)."""
    wanted = Counter(
        (events[i].payload.buyer_id, code)
        for i in fresh
        for code in set(events[i].payload.coupon_codes)
    )
    found = await catalogue.load_grants(tx, dict(wanted)) if wanted else {}
    taken: Counter[tuple[str, str]] = Counter()
    kept, grants = [], {}
    for i in fresh:
        order = events[i].payload
        pairs = [(order.buyer_id, c) for c in order.coupon_codes]
        if len(set(pairs)) != len(pairs) or any(taken[p] >= len(found.get(p, ())) for p in pairs):
            continue
        grants[i] = [found[p][taken[p]] for p in pairs]
        taken.update(pairs)
        kept.append(i)
    return kept, grants


async def _new_purchases(
    stage: "OrderBuild",
    tx: asyncpg.Connection,
    events: list[OrderSubmitted],
    subs: list[Submission],
    usual: list[int],
    grants: dict[int, list[Coupon]],
) -> dict[int, Sequence[Envelope]]:
    """Build, hold and save the usual submissions (whose keys this batch now owns)."""
    # Rejections are kept without their traceback: its frames (and through them every
    # caller's, with the whole batch) would be a reference cycle only the garbage collector
    # frees, tens of thousands of objects per batch.
    turned_down: dict[int, Rejection] = {}
    wanted: dict[int, Counter[str]] = {}
    for i in usual:
        order = events[i].payload
        try:
            check_payment_method(order.payment_method, stage.routes)  # before anything is held
        except Rejection as r:
            turned_down[i] = r.with_traceback(None)
            continue
        wanted[i] = wanted_quantities(order.items)
    items = await catalogue.load_items(tx, sorted({s for q in wanted.values() for s in q}))
    now, priced = datetime.now(UTC), {}
    for i, quantities in wanted.items():
        order = events[i].payload
        try:
            priced[i] = price_order(
                order.order_id, order.currency, dict(quantities), items, grants[i], now
            )
        except Rejection as r:
            turned_down[i] = r.with_traceback(None)
    await _hold(tx, events, wanted, priced, turned_down)
    built = [i for i in usual if i in priced and i not in turned_down]
    await store.save_orders(tx, [store.Built(events[i].payload, priced[i], subs[i]) for i in built])
    await store.save_rejections(tx, [(subs[i], turned_down[i]) for i in sorted(turned_down)])
    out: dict[int, Sequence[Envelope]] = {i: [answers.built(events[i], priced[i])] for i in built}
    out.update({i: [answers.rejected(events[i], r)] for i, r in turned_down.items()})
    return out


async def _hold(
    tx: asyncpg.Connection,
    events: list[OrderSubmitted],
    wanted: dict[int, Counter[str]],
    priced: dict[int, PricedOrder],
    turned_down: dict[int, Rejection],
) -> None:
    """The Try of stock and coupons for every priced order, and the stock held in the
    batch's order; an order that cannot be held is turned down and its Try rows undone."""
    order_of = {i: events[i].payload.order_id for i in priced}
    gids = [order_of[i] for i in sorted(priced, key=order_of.__getitem__)]
    tried_stock = await try_many(tx, gids, stock.BRANCH)
    tried_coupons = await try_many(tx, gids, coupons.BRANCH)  # an order without coupons too
    for i in priced:
        if Verdict.REFUSED in (
            tried_stock[order_of[i]].verdict,
            tried_coupons[order_of[i]].verdict,
        ):
            # A Cancel for this order already ran (anti-hanging): never hold again.
            turned_down[i] = Rejection(
                "order_already_cancelled", f"order {order_of[i]} was cancelled"
            )
    # Coupons before stock: an order whose grant another order took meanwhile holds nothing.
    locking = {
        g: i
        for i in sorted(priced)
        if i not in turned_down and tried_coupons[order_of[i]].apply
        for g in priced[i].grant_ids
    }
    locked = await coupons.lock_many(tx, {g: order_of[i] for g, i in locking.items()})
    for g, i in locking.items():
        if g not in locked:
            turned_down[i] = Rejection(
                "coupon_not_granted", f"grant {g} was taken by another order"
            )
    left = await stock_deferred.available(tx, sorted({s for i in priced for s in wanted[i]}))
    holds: dict[str, dict[str, int]] = {}
    for i in sorted(priced):
        entry = tried_stock[order_of[i]]
        if i in turned_down or not entry.apply:
            continue
        quantities = wanted[i]
        short = stock.first_short(quantities, left)
        if short is not None:
            turned_down[i] = Rejection(
                "out_of_stock", str(stock.OutOfStock(short, quantities[short]))
            )
            continue
        for s, q in quantities.items():
            left[s] -= q
        holds[order_of[i]] = dict(quantities)
    down = [order_of[i] for i in turned_down if i in priced]
    await coupons.unlock(tx, sorted({order_of[i] for i in locking.values()} & set(down)))
    await forget_tries(tx, [g for g in down if tried_stock[g].apply], stock.BRANCH)
    await forget_tries(tx, [g for g in down if tried_coupons[g].apply], coupons.BRANCH)
    await stock.hold_parked(tx, holds)
