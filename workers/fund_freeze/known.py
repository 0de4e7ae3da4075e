"""An order.built is frozen only for an order we built, as we built it: the event's buyer,
total and sub-orders (merchant, what the buyer pays, what the platform covers) must be those
order build stored. A forged or altered event would otherwise freeze a wallet and record
what merchants are owed for an order that does not exist, or not as the event says."""

from dataclasses import dataclass

from contracts.events.orders import OrderBuiltPayload


@dataclass(frozen=True)
class StoredPart:
    merchant_id: str
    amount: int
    platform_discount: int


@dataclass(frozen=True)
class StoredOrder:
    buyer_id: str
    currency: str
    total: int
    parts: dict[str, StoredPart]  # by sub-order id
    frozen: bool  # its transaction is recorded: frozen before


def disagreement(order: OrderBuiltPayload, stored: StoredOrder | None) -> str | None:
    """Why the event is not the order we built, or None when it is."""
    if stored is None:
        return f"order {order.order_id} was never built"
    told = (order.buyer_id, order.total.currency, order.total.amount)
    if told != (stored.buyer_id, stored.currency, stored.total):
        return (
            f"order {order.order_id}: the event says buyer {told[0]}, total {told[2]} {told[1]}; "
            f"built for buyer {stored.buyer_id}, total {stored.total} {stored.currency}"
        )
    parts = {
        s.sub_order_id: StoredPart(s.merchant_id, s.amount.amount, s.platform_discount.amount)
        for s in order.sub_orders
    }
    if len(parts) != len(order.sub_orders) or parts != stored.parts:
        return f"order {order.order_id}: the event's sub-orders are not those built"
    return None
