"""The decision on a payment, taken by gateway request (wallet-only) or callback handling."""

from typing import Literal

from contracts.base import Identifier, StrictModel
from contracts.envelope import Envelope
from contracts.money import Money


class PaymentDecisionPayload(StrictModel):
    order_id: Identifier
    transaction_id: Identifier
    buyer_id: Identifier
    total: Money
    wallet_part: Money
    gateway_part: Money
    gateway_ref: Identifier | None = None
    reason_code: str | None = None
    detail: str | None = None


class PaymentSucceeded(Envelope):
    event_type: Literal["payment.succeeded"] = "payment.succeeded"
    payload: PaymentDecisionPayload


class PaymentFailed(Envelope):
    """Declined, insufficient funds, or expired: settlement cancels every hold."""

    event_type: Literal["payment.failed"] = "payment.failed"
    payload: PaymentDecisionPayload


class PaymentNeedsReview(Envelope):
    """The gateway's answer does not add up (amount, currency): a human decides."""

    event_type: Literal["payment.needs_review"] = "payment.needs_review"
    payload: PaymentDecisionPayload


class LateMoneyPayload(StrictModel):
    """Money the buyer paid that we did not sell for, and what is done about it."""

    order_id: Identifier | None = None  # None for a wallet top-up
    wallet_operation_id: Identifier | None = None
    payment_id: Identifier
    gateway_ref: Identifier
    refund_id: Identifier
    amount: Money
    reason: Literal["late_success", "second_charge"]
    action: Literal["refund_requested", "held_for_review", "refund_succeeded", "refund_failed"]
    detail: str | None = None


class PaymentLateMoney(Envelope):
    """For operators: a success after the order was not sold, or a second charge, and its
    refund (requested, held for review, then succeeded or failed)."""

    event_type: Literal["payment.late_money"] = "payment.late_money"
    payload: LateMoneyPayload
