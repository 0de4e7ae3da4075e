"""Fund freeze freezes an order.built only when it is the order we built (pure rule)."""

from contracts.events.orders import OrderBuiltPayload
from contracts.generate import example_documents
from contracts.money import Money
from workers.fund_freeze.known import StoredOrder, StoredPart, disagreement


def _order() -> OrderBuiltPayload:
    return OrderBuiltPayload.model_validate(example_documents()["order.built"]["payload"])


def _stored(order: OrderBuiltPayload) -> StoredOrder:
    parts = {
        s.sub_order_id: StoredPart(s.merchant_id, s.amount.amount, s.platform_discount.amount)
        for s in order.sub_orders
    }
    return StoredOrder(order.buyer_id, order.total.currency, order.total.amount, parts, False)


def test_the_order_as_built_agrees() -> None:
    order = _order()
    assert disagreement(order, _stored(order)) is None


def test_an_order_never_built_is_named() -> None:
    order = _order()
    assert disagreement(order, None) == f"order {order.order_id} was never built"


def test_another_buyer_or_total_is_named_with_both_sides() -> None:
    order = _order()
    stored = _stored(order)
    cheaper = order.model_copy(update={"total": Money(amount=1, currency=order.total.currency)})
    why = disagreement(cheaper, stored)
    assert why is not None and "total 1 " in why and f"total {stored.total} " in why
    other = order.model_copy(update={"buyer_id": "someone-else"})
    assert "buyer someone-else" in (disagreement(other, stored) or "")


def test_sub_orders_must_be_those_built() -> None:
    order = _order()
    stored = _stored(order)
    first = order.sub_orders[0]
    moved = first.model_copy(update={"merchant_id": "another-merchant"})
    assert disagreement(order.model_copy(update={"sub_orders": [moved]}), stored)
    twice = order.model_copy(update={"sub_orders": [first, first]})
    assert disagreement(twice, _stored(twice)) is not None  # the same sub-order twice
    fewer = order.model_copy(update={"sub_orders": order.sub_orders[:1]})  # of two
    assert disagreement(fewer, stored) is not None
