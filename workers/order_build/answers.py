"""What order build publishes for a new purchase: the order as built, or its rejection."""

from contracts.events.orders import (
    OrderBuilt,
    OrderBuiltPayload,
    OrderSubmitted,
    PricedLine,
    SubOrder,
)
from contracts.events.outcomes import OrderClosedPayload, OrderRejected
from contracts.money import Money
from workers.order_build.pricing import Part, PricedOrder
from workers.order_build.rules import Rejection


def rejected(event: OrderSubmitted, r: Rejection) -> OrderRejected:
    payload = OrderClosedPayload(
        order_id=event.payload.order_id, stage="order_build", reason_code=r.code, detail=r.detail
    )
    return OrderRejected.caused_by(event, payload)


def built(event: OrderSubmitted, priced: PricedOrder) -> OrderBuilt:
    order, cur = event.payload, event.payload.currency
    return OrderBuilt.caused_by(
        event,
        OrderBuiltPayload(
            order_id=order.order_id,
            buyer_id=order.buyer_id,
            payment_preference=order.payment_preference,
            payment_method=order.payment_method,
            subtotal=Money(amount=priced.subtotal, currency=cur),
            discount=Money(amount=priced.discount, currency=cur),
            total=Money(amount=priced.total, currency=cur),
            sub_orders=[_contract_sub_order(p, cur) for p in priced.parts],
            coupon_codes=order.coupon_codes,
        ),
    )


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
