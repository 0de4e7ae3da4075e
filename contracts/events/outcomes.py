"""Final outcomes of an order, consumed by upstream systems."""

import uuid
from typing import Annotated, Literal

from pydantic import Field

from contracts.base import Identifier, StrictModel
from contracts.envelope import MAX_KEY, Envelope
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


class OrderDuplicatePayload(StrictModel):
    order_id: Identifier = Field(description="The order id of this submission: never built.")
    original_order_id: Identifier = Field(
        description="The order first submitted under this idempotency key: follow its outcome."
    )
    idempotency_key: Annotated[str, Field(min_length=1, max_length=MAX_KEY)]


class OrderDuplicate(Envelope):
    """The same request as an earlier order (same idempotency key, same content) under a new
    order id: nothing was built, held or charged for this order id; the purchase is
    original_order_id, whose outcome is (or will be) published for that order id."""

    event_type: Literal["order.duplicate"] = "order.duplicate"
    payload: OrderDuplicatePayload


SubmissionRefusalCode = Literal["idempotency_key_conflict", "order_id_conflict"]


class OrderSubmissionRefusedPayload(StrictModel):
    order_id: Identifier = Field(
        description="The order id this submission carried. With order_id_conflict it is "
        "original_order_id, an existing order that this event does not change."
    )
    reason_code: SubmissionRefusalCode = Field(
        description="idempotency_key_conflict: the idempotency key already belongs to "
        "original_order_id, submitted with other content. order_id_conflict: the order id "
        "was already submitted with other content."
    )
    detail: str
    idempotency_key: str = Field(
        min_length=1,
        max_length=MAX_KEY,
        description="The idempotency key of the refused submission.",
    )
    refused_event_id: uuid.UUID = Field(
        description="event_id of the refused order.submitted (also this event's causation_id)."
    )
    original_order_id: Identifier = Field(
        description="The order the key or the order id already belongs to; its state and "
        "outcome are not changed by this event."
    )


class OrderSubmissionRefused(Envelope):
    """This submission (one order.submitted event) was refused and changed nothing: its
    idempotency key or its order id was already used with other content. It is not the
    outcome of an order: the state of original_order_id is unchanged and its own outcome is
    (or will be) published as usual, even when order_id is that same order id."""

    event_type: Literal["order.submission_refused"] = "order.submission_refused"
    payload: OrderSubmissionRefusedPayload


class OrderManualReview(Envelope):
    """Money that does not add up; holds stay until an operator decides."""

    event_type: Literal["order.manual_review"] = "order.manual_review"
    payload: OrderClosedPayload


class OrderRefundedPayload(StrictModel):
    order_id: Identifier
    refund_id: Identifier
    sub_order_id: Identifier | None = Field(
        default=None, description="The sub-order refunded; absent: the whole order."
    )
    amount: Money
    to_wallet: Money | None = Field(
        default=None,
        description=(
            "What went to the buyer's wallet: its share, plus the card share when the "
            "gateway refused to refund the card."
        ),
    )
    to_card: Money | None = Field(
        default=None, description="What the gateway gave back to the card."
    )


class OrderRefunded(Envelope):
    """Part or all of a settled order went back to the buyer, every share where it belongs
    (sent once the card share, if any, is back too)."""

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
