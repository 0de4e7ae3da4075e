"""Order build: price the cart from our catalogue, apply coupons, split, hold stock and coupons;
a submission seen before (same order id, or same idempotency key) is answered, not built again."""

import functools
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

import asyncpg
import structlog

from contracts.envelope import Envelope
from contracts.events.orders import (
    OrderSubmitted,
)
from contracts.events.outcomes import (
    OrderDuplicate,
    OrderDuplicatePayload,
    OrderSubmissionRefused,
)
from contracts.topics import ORDERS_SUBMITTED, Topic
from infra.settings import get_settings
from workers.order_build import answers, catalogue, idempotency, store
from workers.order_build.batch import build_batch
from workers.order_build.pricing import PricedOrder, price_order
from workers.order_build.rules import Rejection, check_payment_method, wanted_quantities
from workers.participants import coupons, stock, stock_deferred
from workers.runtime.errors import is_transient
from workers.runtime.stage import Stage
from workers.tcc.barrier import Verdict

log = structlog.get_logger()
PRUNE_EVERY_S = 300.0  # expired idempotency keys are forgotten at most this often


class OrderBuild(Stage):
    name: ClassVar[str] = "order_build"
    consumes: ClassVar[Topic] = ORDERS_SUBMITTED
    batched: ClassVar[bool] = True  # workers/order_build/batch.py

    _next_prune = 0.0  # time.monotonic() of the next prune of expired keys

    @functools.cached_property
    def retention_h(self) -> int:
        """Hours an idempotency key is kept: the setting, never below what shops are promised."""
        configured = get_settings().idempotency_retention_h
        if configured < idempotency.MIN_RETENTION_H:
            log.warning(
                "idempotency_retention_raised",
                configured_h=configured,
                used_h=idempotency.MIN_RETENTION_H,
            )
        return max(configured, idempotency.MIN_RETENTION_H)

    @functools.cached_property
    def routes(self) -> dict[str, str]:
        """Payment method -> gateway adapter: a method not listed is rejected here."""
        return get_settings().routes

    async def handle_batch(
        self, events: list[Envelope], tx: asyncpg.Connection, prepared: Mapping[UUID, Any]
    ) -> list[Sequence[Envelope]]:
        submitted = [e for e in events if isinstance(e, OrderSubmitted)]
        assert len(submitted) == len(events)
        return await build_batch(self, submitted, tx)

    async def handle(
        self, event: Envelope, tx: asyncpg.Connection, prepared: Any
    ) -> Sequence[Envelope]:
        assert isinstance(event, OrderSubmitted)
        sub = idempotency.Submission.of(event)
        judged = await self._judge(tx, sub)
        if judged is not None:
            return await self._answer_again(tx, event, sub, judged)
        order = event.payload
        try:
            async with tx.transaction():  # nothing is held unless everything is
                priced = await self._build(tx, event)
        except Rejection as r:
            await store.save_rejections(tx, [(sub, r)])
            return [answers.rejected(event, r)]
        await store.save_orders(tx, [store.Built(order, priced, sub)])
        return [answers.built(event, priced)]

    async def _judge(
        self, tx: asyncpg.Connection, sub: idempotency.Submission
    ) -> idempotency.Judgement | None:
        """None for a new purchase, whose key this submission now owns (in this event's
        transaction: it commits or rolls back with the order)."""
        bound = await store.order_binding(tx, sub.order_id)
        if bound is not None:
            return idempotency.against_order_id(bound, sub)
        owner = await store.claim_key(tx, sub, self.retention_h)
        return None if owner is None else idempotency.against_key(owner, sub)

    async def _answer_again(
        self,
        tx: asyncpg.Connection,
        event: OrderSubmitted,
        sub: idempotency.Submission,
        judged: idempotency.Judgement,
    ) -> list[Envelope]:
        first = judged.earlier
        if judged.verdict is idempotency.Verdict.REDELIVERY:
            return []  # the same order again under a new event id: already answered
        if judged.verdict is idempotency.Verdict.REPLAY:
            await store.save_duplicate(tx, sub, first.order_id)
            log.info("order_duplicate", original_order_id=first.order_id)
            payload = OrderDuplicatePayload(
                order_id=sub.order_id,
                original_order_id=first.order_id,
                idempotency_key=sub.idempotency_key,
            )
            return [OrderDuplicate.caused_by(event, payload)]
        await store.save_conflict(tx, sub, judged)
        log.warning(
            "order_submission_conflict",
            reason=judged.verdict.value,
            idempotency_key=sub.idempotency_key,
            existing_order_id=first.order_id,
            existing_event_id=str(first.event_id) if first.event_id else None,
            digest=judged.digest,
            existing_digest=first.digest,
        )
        # Not order.rejected: the order id may be an existing order that goes on to settle.
        return [OrderSubmissionRefused.caused_by(event, idempotency.refusal(judged, sub))]

    async def before_commit(self, tx: asyncpg.Connection) -> None:
        """The batch's stock holds, one update per SKU (locked only from here to the commit);
        now and then, forget a bounded batch of expired keys. Not in an event's savepoint,
        so a failed prune never dead-letters an order; it is tried again later."""
        await stock_deferred.flush(tx)
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_EVERY_S
        try:
            async with tx.transaction():
                pruned = await store.prune_keys(tx, self.retention_h)
        except Exception as exc:
            if is_transient(exc):
                raise
            log.error("idempotency_prune_failed", error=repr(exc))
            return
        if pruned:
            log.info("idempotency_keys_pruned", count=pruned)
        if pruned == store.PRUNE_BATCH:
            self._next_prune = 0.0  # more to do: again with the next batch

    async def _build(self, tx: asyncpg.Connection, event: OrderSubmitted) -> PricedOrder:
        order = event.payload
        check_payment_method(order.payment_method, self.routes)  # before anything is held
        quantities = wanted_quantities(order.items)
        if len(set(order.coupon_codes)) != len(order.coupon_codes):
            raise Rejection("duplicate_coupon", "each coupon code may be used once per order")
        items = await catalogue.load_items(tx, list(quantities))
        grants = await catalogue.load_coupons(tx, order.buyer_id, order.coupon_codes)
        priced = price_order(
            order.order_id, order.currency, dict(quantities), items, grants, datetime.now(UTC)
        )
        try:
            held = await stock.hold(tx, order.order_id, dict(quantities))
        except stock.OutOfStock as exc:
            raise Rejection("out_of_stock", str(exc)) from exc
        try:
            locked = await coupons.lock(tx, order.order_id, list(priced.grant_ids))
        except coupons.CouponUnavailable as exc:
            raise Rejection(
                "coupon_not_granted", f"grant {exc} was taken by another order"
            ) from exc
        if Verdict.REFUSED in (held.verdict, locked.verdict):
            # A Cancel for this order already ran (anti-hanging): never hold again.
            raise Rejection("order_already_cancelled", f"order {order.order_id} was cancelled")
        return priced
