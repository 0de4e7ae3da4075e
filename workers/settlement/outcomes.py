"""The events settlement publishes when an order is done."""

from contracts.envelope import Envelope
from contracts.events.outcomes import (
    MerchantPayout,
    OrderCancelled,
    OrderClosedPayload,
    OrderSettled,
    OrderSettledPayload,
)
from contracts.events.payments import PaymentDecisionPayload, PaymentFailed
from contracts.money import Money
from workers.settlement.legs import Payout

# The states settlement moves an order on from; a settled or cancelled order stays so.
OPEN = ("built", "funds_frozen", "payment_requested", "paid", "manual_review")


def settled(
    event: Envelope, p: PaymentDecisionPayload, payouts: list[tuple[Payout, str]]
) -> Envelope:
    """`OrderSettled`: what the buyer paid and what each merchant is owed (`payouts`, with
    each merchant's id)."""
    cur = p.total.currency

    def m(amount: int) -> Money:
        return Money(amount=amount, currency=cur)

    return OrderSettled.caused_by(
        event,
        OrderSettledPayload(
            order_id=p.order_id,
            transaction_id=p.transaction_id,
            total=p.total,
            wallet_part=p.wallet_part,
            gateway_part=p.gateway_part,
            payouts=[
                MerchantPayout(
                    sub_order_id=s.sub_order_id,
                    merchant_id=mid,
                    gross=m(s.amount),
                    fee=m(s.fee),
                    net=m(s.net),
                )
                for s, mid in payouts
            ],
        ),
    )


def cancel_reason(p: PaymentDecisionPayload) -> str:
    return p.reason_code or "payment_failed"


def cancelled(event: PaymentFailed) -> Envelope:
    """`OrderCancelled`: every hold went back, saying why the payment failed."""
    p = event.payload
    reason = cancel_reason(p)
    return OrderCancelled.caused_by(
        event,
        OrderClosedPayload(
            order_id=p.order_id, stage="settlement", reason_code=reason, detail=p.detail or reason
        ),
    )
