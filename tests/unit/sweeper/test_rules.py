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


def _after(
    charges: list[Charge],
    check: int,
    age_s: float,
    *,
    window_left_s: float = 600,
    margin_s: float = 10,
) -> rules.Plan:
    return rules.after_query(
        charges,
        check,
        age_s,
        in_flight=30,
        schedule=SCHEDULE,
        window_left_s=window_left_s,
        resend_margin_s=margin_s,
    )


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
    plan = _after([_charge("failed", "gw-1"), _charge("succeeded", "gw-2")], 1, 100)
    assert plan.action == "decide" and plan.result == "succeeded"
    assert [n.gateway_ref for n in plan.notices] == ["gw-2", "gw-1"]
    assert plan.notices[0].callback_id == "sync:gw-2:succeeded"
    assert plan.notices[1].status == "failed"


def test_pending_charges_are_asked_again_never_sent_to_review() -> None:
    assert _after([_charge("pending")], 1, 100).next_in_s == 1.0
    late = _after([_charge("pending")], 9, 100, window_left_s=-5)
    assert late.action == "next_check" and late.next_in_s == 2.0


def test_nothing_at_the_gateway_is_not_judged_while_the_call_may_be_in_flight() -> None:
    early = _after([], 1, age_s=5)
    assert early.action == "next_check" and early.result == "not_found_yet"
    assert early.next_in_s == 25  # in flight for 30 s


def test_nothing_at_the_gateway_within_the_window_is_sent_again_on_the_schedule() -> None:
    for check, step in ((1, 1.0), (2, 2.0), (7, 2.0)):  # past the schedule: its last step
        plan = _after([], check, age_s=31, window_left_s=600)
        assert plan.action == "resend" and plan.next_in_s == step
        assert plan.notices == []


def test_too_close_to_the_window_end_to_re_send_it_is_asked_again_when_it_closes() -> None:
    plan = _after([], 3, age_s=200, window_left_s=0.7, margin_s=1.0)
    assert plan.action == "next_check" and plan.result == "window_closing"
    assert plan.next_in_s == 0.7


def test_nothing_at_the_gateway_once_the_window_closed_was_never_received() -> None:
    for left in (0.0, -30.0):
        plan = _after([], 1, age_s=31, window_left_s=left)
        assert plan.action == "never_received" and plan.result == "never_received"


def test_a_charge_found_after_a_re_send_is_decided_even_past_the_window() -> None:
    plan = _after([_charge("succeeded")], 4, age_s=900, window_left_s=-10)
    assert plan.action == "decide" and plan.result == "succeeded"


def test_what_a_re_send_came_to() -> None:
    accepted = rules.after_resend("accepted", 1, SCHEDULE)
    assert (accepted.action, accepted.result, accepted.next_in_s) == ("next_check", "resent", 1.0)
    unknown = rules.after_resend("unknown", 5, SCHEDULE)
    assert (unknown.action, unknown.result, unknown.next_in_s) == (
        "next_check",
        "resend_unknown",
        2.0,
    )
    refused = rules.after_resend("refused", 1, SCHEDULE)
    assert (refused.action, refused.result) == ("never_received", "resend_refused")


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
