"""What one gateway answer does to a late refund (pure: no gateway, no database)."""

from contracts.money import Money
from workers.gateway.port import Refund
from workers.late_payments.records import LateRefund
from workers.late_payments.refund_job import after_answer, after_unknown, idempotency_key


def _refund(attempts: int = 0) -> LateRefund:
    return LateRefund(
        refund_id="late:gw-1",
        kind="late_payment",
        payment_id="pay-1",
        gateway_ref="gw-1",
        adapter="direct",
        amount=500,
        currency="EUR",
        reason="late_success",
        status="requested",
        attempts=attempts,
        order_id="ord-1",
        wallet_operation_id=None,
        order_refund_id=None,
        age_s=0.0,
    )


def _answer(status: str, reason: str | None = None) -> Refund:
    money = Money(amount=500, currency="EUR")
    return Refund("late:gw-1", "rf-9", "gw-1", status, money, reason)  # type: ignore[arg-type]


def test_the_idempotency_key_is_derived_from_the_refund_id() -> None:
    assert idempotency_key("late:gw-1") == "payflow:refund:late:gw-1"


def test_an_accepted_refund_waits_for_its_callback_the_grace() -> None:
    step = after_answer(_refund(), _answer("pending"), 30.0)
    assert (step.status, step.next_try_in_s, step.notice) == ("pending", 30.0, None)


def test_a_definite_answer_is_decided_as_a_refund_notice() -> None:
    step = after_answer(_refund(), _answer("failed", "card_closed"), 30.0)
    assert step.notice is not None
    assert (step.notice.kind, step.notice.status, step.notice.refund_id) == (
        "refund",
        "failed",
        "late:gw-1",
    )
    assert step.notice.failure_reason == "card_closed"


def test_unknown_is_retried_on_the_schedule_then_held_for_review() -> None:
    schedule = [60.0, 300.0]
    assert after_unknown(_refund(0), "timeout", schedule).next_try_in_s == 60.0
    assert after_unknown(_refund(1), "timeout", schedule).next_try_in_s == 300.0
    last = after_unknown(_refund(2), "timeout", schedule)
    assert last.status == "held_for_review"
    assert last.evidence["evidence"] == "timeout"
