"""The ways out of the cases that had none (no I/O): an unresolved top-up, a withdrawal whose
hold could not be confirmed, a held order refund whose card share still waits."""

from workers.review.rules import Facts, plan

TOP_UP = Facts(
    kind="top_up_unresolved",
    payment_status="manual_review",
    operation_kind="top_up",
    operation_status="manual_review",
)
WITHDRAWAL = Facts(
    kind="hold_expired", operation_kind="withdrawal", operation_status="manual_review",
    holds_open=True,
)  # fmt: skip


def _with(f: Facts, **changes: object) -> Facts:
    return Facts(**{**f.__dict__, **changes})


def test_an_unresolved_top_up_is_credited_by_the_wallet_stage_with_the_charge_recorded() -> None:
    assert plan("succeed", TOP_UP).refused == (
        "the gateway's reference of the charge is unknown: pass --gateway-ref"
    )
    assert plan("succeed", _with(TOP_UP, gateway_ref="gw-1")).steps == (
        "payment_succeeded", "record_charge", "publish_top_up_result",
    )  # fmt: skip
    assert plan("fail", TOP_UP).steps == ("payment_failed", "publish_top_up_result")


def test_a_top_up_not_yet_moved_to_review_by_the_wallet_stage_can_be_decided() -> None:
    assert plan("fail", _with(TOP_UP, operation_status="requested")).steps == (
        "payment_failed", "publish_top_up_result",
    )  # fmt: skip


def test_a_decided_top_up_is_not_decided_again_and_only_then_explained() -> None:
    decided = _with(TOP_UP, payment_status="succeeded", operation_status="completed")
    assert "only a top-up and its payment in manual_review" in str(plan("fail", decided).refused)
    assert plan("explain", TOP_UP).refused == (
        "the top-up is still in manual_review: succeed or fail closes it"
    )
    assert plan("explain", decided).steps == ("close",)
    assert plan("refund", TOP_UP).refused == (
        "refund does not fit a top_up_unresolved case; use succeed or fail or explain"
    )
    withdrawal = plan("refund", WITHDRAWAL).refused
    assert withdrawal == "refund fits an order's case: use fail or explain"


def test_a_withdrawal_whose_hold_is_still_held_is_failed_by_a_tcc_cancel() -> None:
    for kind in ("hold_expired", "race_loser"):
        f = _with(WITHDRAWAL, kind=kind)
        assert plan("fail", f).steps == ("cancel_withdrawal",)
        assert plan("explain", f).refused == "the withdrawal's hold is still held: fail cancels it"
        assert plan("succeed", f).refused is not None


def test_a_withdrawal_with_nothing_held_is_only_explained() -> None:
    released = _with(WITHDRAWAL, holds_open=False, operation_status="failed")
    assert plan("explain", released).steps == ("close",)
    assert plan("fail", released).refused == (
        "nothing is held for this withdrawal (it is failed): use explain"
    )


def test_a_held_order_refund_whose_card_share_waits_is_sent_again() -> None:
    f = Facts(
        kind="refund_held", refund_kind="order_refund", refund_status="held_for_review",
        order_refund_status="pending",
    )  # fmt: skip
    assert plan("refund", f).steps == ("reopen_refund",)
    assert "still waits in card_refunds_payable" in str(plan("explain", f).refused)
    sent = _with(f, refund_status="requested")
    assert plan("refund", sent).refused == "the refund is requested, not held for review"


def test_an_order_refund_conflict_is_only_explained() -> None:
    conflict = Facts(
        kind="refund_held", refund_kind="order_refund", refund_status="held_for_review",
        order_refund_status="completed", card_outcome="to_wallet",
    )  # fmt: skip
    refused = str(plan("refund", conflict).refused)
    assert "was paid back to the wallet already" in refused
    assert plan("explain", conflict).steps == ("close",)
