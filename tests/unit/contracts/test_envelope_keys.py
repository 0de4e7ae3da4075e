"""Follow-on idempotency keys stay within the contract whatever the upstream key."""

from contracts.events.orders import OrderLine, OrderSubmitted, OrderSubmittedPayload
from contracts.events.outcomes import OrderClosedPayload, OrderRejected


def test_a_long_upstream_key_still_yields_valid_follow_on_events() -> None:
    order = OrderSubmitted.new(
        "o-1",
        OrderSubmittedPayload(
            order_id="o-1", buyer_id="b", currency="EUR", items=[OrderLine(sku_id="s", quantity=1)]
        ),
        idempotency_key="k" * 200,
    )
    follow = OrderRejected.caused_by(
        order, OrderClosedPayload(order_id="o-1", stage="order_build", reason_code="x", detail="y")
    )
    assert follow.idempotency_key.startswith("sha256:")
