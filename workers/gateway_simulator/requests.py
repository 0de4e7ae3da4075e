"""Request bodies of both APIs (docs/gateway-api.md); a body that does not fit is a 400."""

from typing import Annotated

from pydantic import Field, StrictInt, field_validator

from contracts.base import Identifier, StrictModel, Text
from contracts.money import Currency, Money

Positive = Annotated[StrictInt, Field(gt=0, le=10**15)]
Words = Annotated[Text, Field(max_length=500)]


def _positive(value: Money) -> Money:
    if value.amount <= 0:
        raise ValueError("amount must be more than 0 minor units")
    return value


class ChargeBody(StrictModel):
    payment_id: Identifier
    order_id: Identifier
    amount: Money
    description: Words | None = None

    _amount = field_validator("amount")(_positive)


class RefundBody(StrictModel):
    refund_id: Identifier
    gateway_ref: Identifier
    amount: Money
    reason: Words | None = None

    _amount = field_validator("amount")(_positive)


class PayoutBody(StrictModel):
    payout_id: Identifier
    amount: Money
    destination: Identifier
    description: Words | None = None

    _amount = field_validator("amount")(_positive)


class CheckoutBody(StrictModel):
    out_trade_no: Identifier
    subject: Annotated[Text, Field(max_length=256)]
    total_amount: Positive
    currency: Currency


class TradeRefundBody(StrictModel):
    out_request_no: Identifier
    trade_no: Identifier
    refund_amount: Positive
    currency: Currency
    reason: Words | None = None


class Empty(StrictModel):
    """Void and close take `{}`."""
