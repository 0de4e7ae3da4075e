"""Refunds of settled orders, asked for by upstream systems."""

from typing import Literal

from pydantic import Field

from contracts.base import Identifier, StrictModel, Text
from contracts.envelope import Envelope
from contracts.money import Money


class RefundRequestedPayload(StrictModel):
    refund_id: Identifier
    order_id: Identifier
    sub_order_id: Identifier
    amount: Money
    reason: Text = Field(min_length=1, max_length=500)


class RefundRequested(Envelope):
    """Give back part of what the buyer paid for one sub-order (to the buyer's wallet)."""

    event_type: Literal["order.refund_requested"] = "order.refund_requested"
    payload: RefundRequestedPayload
