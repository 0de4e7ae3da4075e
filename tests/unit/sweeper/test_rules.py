"""The sweeper's schedule and due rules, over plain data."""

from datetime import UTC, datetime, timedelta

from contracts.money import Money
from workers.gateway.port import Charge
from workers.participants import funds
from workers.sweeper import rules

SCHEDULE = [0.5, 1.0, 2.0]
EUR = Money(amount=500, currency="EUR")


def _charge(status: str, ref: str = "gw-1") -> Charge:
    return Charge(gateway_ref=ref, payment_id="pay-1", status=status, amount=EUR)  # type: ignore[arg-type]


def test_task_keys_are_deterministic() -> None:
    assert rules.sync_task_key("pay-1", 2) == "sync:pay-1:2"
    assert rules.window_task_key("ord-1") == "window:ord-1"
    assert rules.void_key("pay-1") == "payflow:void:pay-1"


def test_schedule_steps_then_none() -> None:
    assert [rules.step_s(n, SCHEDULE) for n in range(4)] == [0.5, 1.0, 2.0, None]


def test_unknown_answers_follow_the_schedule_then_go_to_review() -> None:
    assert rules.after_unknown(1, SCHEDULE).next_in_s == 1.0
    assert rules.after_unknown(2, SCHEDULE).next_in_s == 2.0
    last = rules.after_unknown(3, SCHEDULE)
    assert last.action == "manual_review" and last.next_in_s is None


def test_a_success_is_decided_first_and_others_follow() -> None:
    plan = rules.after_query(
        [_charge("failed", "gw-1"), _charge("succeeded", "gw-2")], 1, 100, 30, SCHEDULE
    )
    assert plan.action == "decide" and plan.result == "succeeded"
    assert [n.gateway_ref for n in plan.notices] == ["gw-2", "gw-1"]
    assert plan.notices[0].callback_id == "sync:gw-2:succeeded"
    assert plan.notices[1].status == "failed"


def test_pending_charges_are_asked_again_never_sent_to_review() -> None:
    assert rules.after_query([_charge("pending")], 1, 100, 30, SCHEDULE).next_in_s == 1.0
    late = rules.after_query([_charge("pending")], 9, 100, 30, SCHEDULE)
    assert late.action == "next_check" and late.next_in_s == 2.0


def test_nothing_at_the_gateway_fails_only_once_the_call_cannot_be_in_flight() -> None:
    early = rules.after_query([], 1, age_s=5, in_flight=30, schedule=SCHEDULE)
    assert early.action == "next_check" and early.next_in_s == 25
    assert rules.after_query([], 1, age_s=31, in_flight=30, schedule=SCHEDULE).action == (
        "never_received"
    )


def test_a_voided_charge_reads_as_a_failure() -> None:
    notice = rules.notice_for(_charge("voided"))
    assert notice.status == "failed" and notice.failure_reason == "voided"


def test_in_flight_and_pay_by() -> None:
    assert rules.in_flight_s(10, 3) == 30
    built = datetime(2026, 1, 1, tzinfo=UTC)
    assert rules.pay_by(built, None, 60) == built + timedelta(seconds=60)
    explicit = built + timedelta(seconds=5)
    assert rules.pay_by(built, explicit, 60) == explicit
    assert funds.hold_expires_at(built, 60) > rules.pay_by(built, None, 60)
