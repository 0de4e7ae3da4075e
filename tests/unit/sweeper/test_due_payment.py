"""A due payment names what its charge pays: the order, or the wallet operation of a top-up
(the gateway's order id, sent again unchanged when the sweeper re-sends the request)."""

from dataclasses import replace

from workers.sweeper.store import DuePayment

ORDER_PAYMENT = DuePayment(
    payment_id="tx-1-p1",
    order_id="ord-1",
    wallet_operation_id=None,
    adapter="direct",
    status="unknown",
    checks=0,
    gateway_ref=None,
    age_s=40.0,
    amount=1000,
    currency="EUR",
    idempotency_key="payflow:tx-1-p1",
    window_left_s=500.0,
)


def test_the_reference_is_the_order_or_the_top_up() -> None:
    assert ORDER_PAYMENT.reference == "ord-1"
    top_up = replace(ORDER_PAYMENT, order_id=None, wallet_operation_id="top-1")
    assert top_up.reference == "top-1"
