"""Order build: price the cart from our catalogue, apply coupons, split, hold stock and coupons."""

import hashlib
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import asyncpg

from contracts.envelope import Envelope
from contracts.events.orders import (
    OrderBuilt,
    OrderBuiltPayload,
    OrderSubmitted,
    PricedLine,
    SubOrder,
)
from contracts.events.outcomes import OrderClosedPayload, OrderRejected
from contracts.money import Money
from contracts.topics import ORDERS_SUBMITTED, Topic
from workers.order_build import catalogue, store
from workers.order_build.pricing import Part, PricedOrder, price_order
from workers.order_build.rules import Rejection
from workers.participants import coupons, stock
from workers.runtime.errors import PermanentError
from workers.runtime.stage import Stage
from workers.tcc.barrier import Verdict


def _contract_sub_order(part: Part, currency: str) -> SubOrder:
    def m(amount: int) -> Money:
        return Money(amount=amount, currency=currency)

    return SubOrder(
        sub_order_id=part.sub_order_id,
        merchant_id=part.merchant_id,
        warehouse_id=part.warehouse_id,
        subtotal=m(part.subtotal),
        discount=m(part.discount),
        platform_discount=m(part.platform_discount),
        amount=m(part.amount),
        lines=[
            PricedLine(
                sku_id=li.sku_id,
                quantity=li.quantity,
                unit_price=m(li.unit_price),
                line_total=m(li.total),
            )
            for li in part.lines
        ],
    )


class OrderBuild(Stage):
    name: ClassVar[str] = "order_build"
    consumes: ClassVar[Topic] = ORDERS_SUBMITTED

    async def handle(
        self, event: Envelope, tx: asyncpg.Connection, prepared: Any
    ) -> Sequence[Envelope]:
        assert isinstance(event, OrderSubmitted)
        order = event.payload
        digest = hashlib.sha256(order.model_dump_json().encode()).hexdigest()
        seen = await store.existing_digest(tx, order.order_id)
        if seen == digest:
            return []  # the same order again under a new event id: already answered
        if seen is not None:
            raise PermanentError(
                "order_id_reused",
                f"order {order.order_id} was already submitted with other content",
            )
        try:
            async with tx.transaction():  # nothing is held unless everything is
                priced = await self._build(tx, event)
        except Rejection as r:
            await store.save_rejection(tx, order.order_id, digest, r.code, r.detail)
            return [
                OrderRejected.caused_by(
                    event,
                    OrderClosedPayload(
                        order_id=order.order_id,
                        stage="order_build",
                        reason_code=r.code,
                        detail=r.detail,
                    ),
                )
            ]
        await store.save_order(tx, order, priced, digest)
        cur = order.currency
        return [
            OrderBuilt.caused_by(
                event,
                OrderBuiltPayload(
                    order_id=order.order_id,
                    buyer_id=order.buyer_id,
                    payment_preference=order.payment_preference,
                    subtotal=Money(amount=priced.subtotal, currency=cur),
                    discount=Money(amount=priced.discount, currency=cur),
                    total=Money(amount=priced.total, currency=cur),
                    sub_orders=[_contract_sub_order(p, cur) for p in priced.parts],
                    coupon_codes=order.coupon_codes,
                ),
            )
        ]

    async def _build(self, tx: asyncpg.Connection, event: OrderSubmitted) -> PricedOrder:
        order = event.payload
        quantities: Counter[str] = Counter()
        for line in order.items:
            quantities[line.sku_id] += line.quantity
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
