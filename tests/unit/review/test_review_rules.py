"""Which operator action fits which review case, over plain facts (no I/O)."""

import pytest

from workers.review.rules import ACTIONS, FITS, Facts, plan

UNRESOLVED = Facts(
    kind="payment_unresolved",
    order_state="manual_review",
    payment_status="manual_review",
    holds_open=True,
)


def test_every_kind_of_the_queue_has_its_actions() -> None:
    kinds = {
        "payment_unresolved", "amount_mismatch", "race_loser", "hold_expired",
        "confirm_after_cancel", "cancel_after_confirm", "late_money_held", "refund_held",
        "top_up_unresolved", "recon_exception", "dead_letter", "settlement_check",
    }  # fmt: skip
    assert set(FITS) == kinds
    assert all(set(actions) <= set(ACTIONS) for actions in FITS.values())


def test_an_unresolved_payment_is_confirmed_only_with_the_gateways_reference() -> None:
    assert plan("succeed", UNRESOLVED).refused == (
        "the gateway's reference of the charge is unknown: pass --gateway-ref"
    )
    known = Facts(**{**UNRESOLVED.__dict__, "gateway_ref": "gw-1"})
    assert plan("succeed", known).steps == ("payment_succeeded", "record_charge", "publish_confirm")


def test_an_unresolved_payment_is_cancelled_through_settlement() -> None:
    assert plan("fail", UNRESOLVED).steps == ("payment_failed", "publish_cancel")


@pytest.mark.parametrize("action", ["refund", "explain"])
def test_an_unresolved_payment_is_only_confirmed_or_cancelled(action: str) -> None:
    refused = plan(action, UNRESOLVED).refused  # type: ignore[arg-type]
    assert refused == f"{action} does not fit a payment_unresolved case; use succeed or fail"


def test_confirm_needs_the_order_and_payment_still_in_review() -> None:
    settled = Facts(**{**UNRESOLVED.__dict__, "order_state": "settled", "gateway_ref": "g"})
    assert "only an order and payment in manual_review" in str(plan("succeed", settled).refused)
    cancelled = Facts(**{**UNRESOLVED.__dict__, "order_state": "cancelled"})
    assert "only an order in manual_review can be cancelled" in str(plan("fail", cancelled).refused)


def test_explain_is_refused_while_holds_are_still_held() -> None:
    mismatch = Facts(kind="amount_mismatch", order_state="manual_review", holds_open=True)
    assert plan("explain", mismatch).refused == "order holds are still held: refund first"
    released = Facts(**{**mismatch.__dict__, "holds_open": False})
    assert plan("explain", released).refused == (
        "the order is still in manual_review: refund closes it"
    )
    closed = Facts(**{**released.__dict__, "order_state": "cancelled"})
    assert plan("explain", closed).steps == ("close",)


def test_a_charged_order_is_never_just_cancelled() -> None:
    f = Facts(
        kind="hold_expired",
        order_state="manual_review",
        payment_status="succeeded",
        gateway_ref="gw-1",
    )
    assert plan("fail", f).refused == (
        "the gateway charged this order (gw-1): use refund, which cancels it and refunds the charge"
    )
    wallet_only = Facts(kind="hold_expired", order_state="manual_review")
    assert plan("fail", wallet_only).steps == ("publish_cancel",)


def test_an_expired_hold_refunds_the_charge_and_closes_the_order() -> None:
    f = Facts(kind="hold_expired", order_state="manual_review", gateway_ref="gw-1")
    assert plan("refund", f).steps == ("open_charge_refund", "publish_cancel")
    refunding = Facts(**{**f.__dict__, "charge_refunded": True})
    assert plan("refund", refunding).steps == ("publish_cancel",)


def test_a_cancelled_order_that_was_paid_gets_its_charge_refunded_once() -> None:
    f = Facts(kind="confirm_after_cancel", order_state="cancelled", gateway_ref="gw-1")
    assert plan("refund", f).steps == ("open_charge_refund",)
    done = Facts(**{**f.__dict__, "charge_refunded": True})
    assert "being refunded already" in str(plan("refund", done).refused)
    no_charge = Facts(kind="confirm_after_cancel", order_state="cancelled")
    assert "no gateway charge is known" in str(plan("refund", no_charge).refused)


def test_a_settled_order_is_refunded_as_a_whole() -> None:
    f = Facts(kind="cancel_after_confirm", order_state="settled", gateway_ref="gw-1")
    assert plan("refund", f).steps == ("publish_order_refund",)


def test_held_late_money_is_sent_back_by_reopening_its_refund() -> None:
    f = Facts(kind="late_money_held", refund_status="held_for_review", refund_kind="late_payment")
    assert plan("refund", f).steps == ("reopen_refund",)
    sent = Facts(**{**f.__dict__, "refund_status": "requested"})
    assert plan("refund", sent).refused == "the refund is requested, not held for review"
    assert plan("succeed", f).refused == (
        "succeed does not fit a late_money_held case; use refund or explain"
    )


def test_an_order_refund_held_for_a_conflict_is_never_sent_again() -> None:
    f = Facts(kind="refund_held", refund_status="held_for_review", refund_kind="order_refund")
    assert "is not sent again from review" in str(plan("refund", f).refused)
    assert plan("explain", f).steps == ("close",)


def test_reconciliation_exceptions_are_resolved_by_recon() -> None:
    refused = plan("refund", Facts(kind="recon_exception")).refused
    assert refused == "resolve a reconciliation exception with `payflow recon resolve`"


@pytest.mark.parametrize("kind", ["recon_exception", "dead_letter"])
def test_kinds_settled_elsewhere_are_only_explained(kind: str) -> None:
    assert plan("explain", Facts(kind=kind)).steps == ("close",)
    assert plan("fail", Facts(kind=kind)).refused is not None
