"""Orders as upstream shops submit them, and as order build prices and splits them."""

from typing import Annotated, Literal

from pydantic import Field

from contracts.base import Identifier, Quantity, StrictModel
from contracts.envelope import Envelope
from contracts.money import Currency, Money

PaymentPreference = Literal["wallet_first", "wallet_only", "gateway_only"]


class OrderLine(StrictModel):
    sku_id: Identifier
    quantity: Quantity


class OrderSubmittedPayload(StrictModel):
    order_id: Identifier
    buyer_id: Identifier
    currency: Currency
    items: Annotated[list[OrderLine], Field(min_length=1, max_length=100)]
    coupon_codes: Annotated[list[Identifier], Field(max_length=5)] = []
    payment_preference: PaymentPreference = "wallet_first"
    payment_method: Identifier = Field(
        default="card",
        description="How the gateway part is paid; PAYFLOW_GATEWAY_ROUTES maps it to an adapter.",
    )


class OrderSubmitted(Envelope):
    """Published by upstream shops; prices come from our catalogue, never from the shop."""

    event_type: Literal["order.submitted"] = "order.submitted"
    payload: OrderSubmittedPayload


class PricedLine(StrictModel):
    sku_id: Identifier
    quantity: Quantity
    unit_price: Money
    line_total: Money


class SubOrder(StrictModel):
    sub_order_id: Identifier
    merchant_id: Identifier
    warehouse_id: Identifier
    subtotal: Money
    discount: Money
    platform_discount: Money = Field(
        description="The part of discount funded by the platform (platform-wide coupons); "
        "the merchant is paid as if it had not been given."
    )
    amount: Money = Field(description="subtotal - discount: what the buyer pays for this part.")
    lines: Annotated[list[PricedLine], Field(min_length=1)]


class OrderBuiltPayload(StrictModel):
    order_id: Identifier
    buyer_id: Identifier
    payment_preference: PaymentPreference
    payment_method: Identifier = "card"
    subtotal: Money
    discount: Money
    total: Money
    sub_orders: Annotated[list[SubOrder], Field(min_length=1)]
    coupon_codes: list[Identifier] = []


class OrderBuilt(Envelope):
    """Priced, discounted, split and with stock (and coupons) held."""

    event_type: Literal["order.built"] = "order.built"
    payload: OrderBuiltPayload
