"""Case openers shared by more than one worker (each runs in the caller's transaction)."""

from typing import Any, cast

import asyncpg

from workers.late_payments.records import LateRefund
from workers.review import store
from workers.review.cases import Kind, open_case


async def refund_held(
    conn: asyncpg.Connection, refund: LateRefund, detail: str, evidence: dict[str, Any]
) -> int:
    """A gateway refund held for review: its outcome stayed unknown or pending past the
    schedule, its gateway is no longer configured, or its answer conflicts with ours."""
    # Held again after an operator sent it again: a new case (the resolved one stays as it
    # was); while one is open, that one.
    seen = await store.refund_held_cases(conn, refund.refund_id)
    still_open = [r["case_id"] for r in seen if r["state"] == "open"]
    if still_open:
        return int(still_open[0])
    subject = f"refund:{refund.refund_id}" + (f"#{len(seen) + 1}" if seen else "")
    return await open_case(
        conn,
        "refund_held",
        subject,
        detail,
        {
            **evidence,
            "refund_id": refund.refund_id,
            "refund_kind": refund.kind,
            "gateway_ref": refund.gateway_ref,
            "amount": refund.amount,
            "currency": refund.currency,
        },
        order_id=refund.order_id,
        payment_id=refund.payment_id,
    )


# What an operator must do after each settlement verdict (in the case's evidence).
SETTLEMENT_TODO = {
    "hold_expired": (
        "the wallet hold expired, so the order cannot be confirmed: its fund, stock and coupon "
        "holds were released; the gateway charge must go back: resolve with --action refund"
    ),
    "confirm_after_cancel": (
        "the order was cancelled (its holds released) before the payment success arrived: "
        "refund the gateway charge with --action refund"
    ),
    "settlement_check": (
        "the transaction's numbers do not add up (see the reason), so it was not settled: its "
        "fund, stock and coupon holds were released; find the cause, then refund the gateway "
        "charge with --action refund (or --action fail when nothing was charged)"
    ),
    "cancel_after_confirm": (
        "the order was settled (stock sold, coupons used) before the payment failure arrived: "
        "check the charge with the gateway; if it really failed, recover the money outside "
        "payflow and resolve with --action explain, else --action explain (settled stands)"
    ),
}


async def settlement_verdict(
    conn: asyncpg.Connection,
    verdict: str,
    order_id: str,
    transaction_id: str,
    gateway_ref: str | None,
    detail: str,
) -> int:
    """A decision settlement could not apply: an expired wallet hold, or a decision that lost
    the Confirm-versus-Cancel race (the database says cancelled or settled, so only this case
    flags it for an operator)."""
    assert verdict in SETTLEMENT_TODO
    return await open_case(
        conn,
        cast(Kind, verdict),
        f"order:{order_id}",
        detail,
        {
            "transaction_id": transaction_id,
            "gateway_ref": gateway_ref,
            "race_loser": verdict in ("confirm_after_cancel", "cancel_after_confirm"),
            "operator_must": SETTLEMENT_TODO[verdict],
        },
        order_id=order_id,
    )
