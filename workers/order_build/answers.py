"""What order build publishes for a new purchase: the order as built, or its rejection."""

from contracts.events.orders import OrderBuilt, OrderBuiltPayload, OrderSubmitted
from contracts.events.outcomes import OrderClosedPayload, OrderRejected
from workers.order_build.pricing import PricedOrder
from workers.order_build.rules import Rejection


def rejected(event: OrderSubmitted, r: Rejection) -> OrderRejected:
    payload = OrderClosedPayload(
        order_id=event.payload.order_id, stage="order_build", reason_code=r.code, detail=r.detail
    )
    return OrderRejected.caused_by(event, payload)


def built(event: OrderSubmitted, priced: PricedOrder) -> OrderBuilt:
    # Validated in one call from plain data: pydantic builds the nested money, lines and
    # sub-orders itself, for about two thirds of the cost of building each one on its own.
    order, cur = event.payload, event.payload.currency

    def m(amount: int) -> dict[str, object]:
        return {"amount": amount, "currency": cur}

    payload = OrderBuiltPayload.model_validate(
        {
            "order_id": order.order_id,
            "buyer_id": order.buyer_id,
            "payment_preference": order.payment_preference,
            "payment_method": order.payment_method,
            "subtotal": m(priced.subtotal),
            "discount": m(priced.discount),
            "total": m(priced.total),
            "sub_orders": [
                {
                    "sub_order_id": p.sub_order_id,
                    "merchant_id": p.merchant_id,
                    "warehouse_id": p.warehouse_id,
                    "subtotal": m(p.subtotal),
                    "discount": m(p.discount),
                    "platform_discount": m(p.platform_discount),
                    "amount": m(p.amount),
                    "lines": [
                        {
                            "sku_id": li.sku_id,
                            "quantity": li.quantity,
                            "unit_price": m(li.unit_price),
                            "line_total": m(li.total),
                        }
                        for li in p.lines
                    ],
                }
                for p in priced.parts
            ],
            "coupon_codes": order.coupon_codes,
        }
    )
    return OrderBuilt.caused_by(event, payload)
