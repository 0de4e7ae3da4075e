"""Final outcomes of an order, consumed by upstream systems."""

from typing import Literal

from contracts.base import Identifier, StrictModel
from contracts.envelope import Envelope
from contracts.money import Money


class MerchantPayout(StrictModel):
    sub_order_id: Identifier
    merchant_id: Identifier
    gross: Money
    fee: Money
    net: Money


class OrderSettledPayload(StrictModel):
    order_id: Identifier
    transaction_id: Identifier
    total: Money
    wallet_part: Money
    gateway_part: Money
    payouts: list[MerchantPayout]


class OrderSettled(Envelope):
    event_type: Literal["order.settled"] = "order.settled"
    payload: OrderSettledPayload


class OrderClosedPayload(StrictModel):
    order_id: Identifier
    stage: Literal["order_build", "fund_freeze", "gateway_request", "callback", "settlement"]
    reason_code: str
    detail: str


class OrderCancelled(Envelope):
    """Holds were taken and have all been released."""

    event_type: Literal["order.cancelled"] = "order.cancelled"
    payload: OrderClosedPayload


class OrderRejected(Envelope):
    """Refused before anything was held (unknown SKU, no stock, bad coupon)."""

    event_type: Literal["order.rejected"] = "order.rejected"
    payload: OrderClosedPayload


class OrderManualReview(Envelope):
    """Money that does not add up; holds stay until an operator decides."""

    event_type: Literal["order.manual_review"] = "order.manual_review"
    payload: OrderClosedPayload


class OrderRefundedPayload(StrictModel):
    order_id: Identifier
    refund_id: Identifier
    sub_order_id: Identifier
    amount: Money


class OrderRefunded(Envelope):
    """Part of a settled order went back to the buyer's wallet."""

    event_type: Literal["order.refunded"] = "order.refunded"
    payload: OrderRefundedPayload


class RefundRejectedPayload(StrictModel):
    order_id: Identifier
    refund_id: Identifier
    reason_code: str
    detail: str


class OrderRefundRejected(Envelope):
    """A refund that was not made (more than was paid, order not settled, ...)."""

    event_type: Literal["order.refund_rejected"] = "order.refund_rejected"
    payload: RefundRejectedPayload
