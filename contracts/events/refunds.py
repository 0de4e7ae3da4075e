"""Refunds of settled orders, asked for by upstream systems."""

from typing import Annotated, Literal

from pydantic import Field

from contracts.base import Identifier, Quantity, StrictModel, Text
from contracts.envelope import Envelope
from contracts.money import Money


class RefundItem(StrictModel):
    sku_id: Identifier
    quantity: Quantity


class RefundRequestedPayload(StrictModel):
    refund_id: Identifier
    order_id: Identifier
    sub_order_id: Identifier | None = Field(
        default=None, description="The sub-order refunded; absent: the whole order."
    )
    amount: Money | None = Field(
        default=None,
        description=(
            "How much to give back; absent: everything still refundable in the scope (the "
            "items' share of what the buyer paid, when items are named)."
        ),
    )
    items: Annotated[list[RefundItem], Field(max_length=100)] = Field(
        default=[],
        description="Items given back (needs sub_order_id); each sku at most once.",
    )
    restock: bool = Field(
        default=False,
        description=(
            "Put the items back on sale: the named items, or without items every item of the "
            "scope not yet given back."
        ),
    )
    reason: Text = Field(min_length=1, max_length=500)


class RefundRequested(Envelope):
    """Give back what the buyer paid for a settled order, a sub-order or items: the wallet
    share to the buyer's wallet, the card share to the card through the gateway."""

    event_type: Literal["order.refund_requested"] = "order.refund_requested"
    payload: RefundRequestedPayload
