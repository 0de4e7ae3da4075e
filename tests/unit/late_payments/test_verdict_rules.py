"""Which verdict a gateway answer gets for each payment state: money that arrived is never
'late' and dropped, and never a 'duplicate' unless it is the same charge."""

import pytest

from workers.late_payments.rules import PaymentState, payment_verdict, refund_verdict

OPEN = ("requesting", "pending", "unknown")


@pytest.mark.parametrize("status", OPEN)
def test_an_open_payment_is_decided_by_either_answer(status: str) -> None:
    state = PaymentState(status, None, "payment_requested")
    assert payment_verdict(state, True, "gw-1", seen=False) == "applied"
    assert payment_verdict(state, False, "gw-1", seen=False) == "applied"


@pytest.mark.parametrize("status", ("failed", "expired", "voided"))
def test_a_success_for_a_given_up_payment_is_late_success(status: str) -> None:
    state = PaymentState(status, None, "cancelled")
    assert payment_verdict(state, True, "gw-1", seen=False) == "late_success"
    # even when the failure was recorded under the same charge reference
    assert payment_verdict(PaymentState(status, "gw-1", None), True, "gw-1", False) == (
        "late_success"
    )


@pytest.mark.parametrize("status", (*OPEN, "failed"))
@pytest.mark.parametrize("order_state", ("cancelled", "rejected"))
def test_a_success_for_an_order_not_sold_is_late_success(status: str, order_state: str) -> None:
    state = PaymentState(status, None, order_state)
    assert payment_verdict(state, True, "gw-1", seen=False) == "late_success"


@pytest.mark.parametrize("status", ("succeeded", "manual_review"))
def test_another_charge_for_a_decided_payment_is_a_second_charge(status: str) -> None:
    state = PaymentState(status, "gw-1", "paid")
    assert payment_verdict(state, True, "gw-2", seen=False) == "second_charge"
    assert payment_verdict(state, True, "gw-1", seen=False) == "duplicate"


def test_the_same_charge_again_is_a_duplicate_whatever_the_state() -> None:
    for status in ("succeeded", "failed", "expired", "voided", "pending"):
        state = PaymentState(status, "gw-1", "cancelled")
        assert payment_verdict(state, True, "gw-9", seen=True) == "duplicate"


def test_a_failure_after_a_decision_moves_no_money() -> None:
    assert payment_verdict(PaymentState("failed", "gw-1", None), False, "gw-1", False) == (
        "duplicate"
    )
    for status in ("succeeded", "expired", "voided", "manual_review"):
        state = PaymentState(status, "gw-1", "paid")
        assert payment_verdict(state, False, "gw-1", seen=False) == "late"


def test_a_top_up_given_up_then_paid_is_late_success() -> None:
    assert payment_verdict(PaymentState("failed", None, None), True, "gw-1", False) == (
        "late_success"
    )


@pytest.mark.parametrize(
    ("current", "answer", "verdict"),
    [
        ("requested", "succeeded", "refund_applied"),
        ("pending", "failed", "refund_applied"),
        ("unknown", "succeeded", "refund_applied"),
        ("held_for_review", "succeeded", "refund_applied"),
        ("succeeded", "succeeded", "refund_duplicate"),
        ("failed", "failed", "refund_duplicate"),
        ("succeeded", "failed", "refund_late"),
        ("failed", "succeeded", "refund_applied"),  # the money went back after all
    ],
)
def test_refund_answers(current: str, answer: str, verdict: str) -> None:
    assert refund_verdict(current, answer) == verdict
