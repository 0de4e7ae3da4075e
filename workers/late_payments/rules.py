"""Which verdict a gateway answer gets, over plain data: never "late and dropped" for money
that arrived, never "duplicate" for a charge we have not seen."""

from dataclasses import dataclass

OPEN_PAYMENT = ("requesting", "pending", "unknown")
# The order was not sold: money that arrives for it goes back to the buyer.
ORDER_NOT_SOLD = ("cancelled", "rejected")
# Decided with a charge (a mismatch goes to review with its charge recorded).
DECIDED_SUCCESS = ("succeeded", "manual_review")


@dataclass(frozen=True)
class PaymentState:
    status: str  # payment_requests.status
    recorded_ref: str | None  # the charge the payment was decided with
    order_state: str | None  # None for a wallet top-up


def payment_verdict(state: PaymentState, succeeded: bool, gateway_ref: str, seen: bool) -> str:
    """`seen`: this gateway_ref was recorded as a success before (a repeated answer).

    applied/decide: the open payment is decided by this answer (the caller checks amounts);
    late_success: money for a payment or order that will not be sold; second_charge: another
    charge for a payment already decided; duplicate / late: nothing to do.
    """
    if not succeeded:
        if state.status in OPEN_PAYMENT:
            return "applied"
        return "duplicate" if state.status == "failed" else "late"
    decided_with_it = state.recorded_ref == gateway_ref and state.status in DECIDED_SUCCESS
    if seen or decided_with_it:
        return "duplicate"
    if state.order_state in ORDER_NOT_SOLD:
        return "late_success"
    if state.status in OPEN_PAYMENT:
        return "applied"
    if state.recorded_ref is not None and state.status in DECIDED_SUCCESS:
        return "second_charge"
    return "late_success"  # failed, expired, voided: the payment was given up


def refund_verdict(current: str, notice_status: str) -> str:
    """A refund callback for a refund in status `current`. The money going back is the
    truth even after a reported failure; a failure after a success changes nothing."""
    if current == notice_status:
        return "refund_duplicate"
    if current == "succeeded":
        return "refund_late"
    return "refund_applied"
