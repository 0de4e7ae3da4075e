"""The fenced decision on a payment: one path for a gateway callback and a sweeper query.

A payment leaves an open state once (`store.decide`, conditional on the fence read under the
row lock); an answer for a payment already decided changes nothing ('duplicate' when it
agrees, 'late' when it contradicts). An amount that differs from what we asked goes to a
human ('mismatch' -> review).
"""

from dataclasses import dataclass
from typing import Any

import asyncpg

from contracts.envelope import Envelope
from contracts.events.payments import (
    PaymentDecisionPayload,
    PaymentFailed,
    PaymentNeedsReview,
    PaymentSucceeded,
)
from contracts.events.wallet import TopUpGatewayResult, TopUpGatewayResultPayload
from contracts.money import Money
from workers.callback_handling import store
from workers.callback_handling.store import PaymentRequest
from workers.gateway.port import Notice
from workers.order_state import set_order_state
from workers.runtime.errors import PermanentError


@dataclass(frozen=True)
class Decision:
    verdict: str  # applied | duplicate | late | mismatch
    detail: str | None
    events: list[Envelope]


async def apply(tx: asyncpg.Connection, cause: Envelope, notice: Notice) -> Decision:
    """Decide the payment `notice` speaks of, inside `tx`; `cause` is the event the decision
    is published as caused by."""
    req = await store.lock_request(tx, notice.payment_id)
    if req is None:
        raise PermanentError("unmatched_callback", f"no payment {notice.payment_id}")
    verdict, detail, outcome = await _decide(tx, req, notice)
    if outcome is None:
        return Decision(verdict, detail, [])
    if req.wallet_operation_id is not None:
        return Decision(verdict, detail, [_top_up_result(cause, req, notice, outcome, detail)])
    event = await _order_decision(tx, cause, req, notice, outcome, detail)
    return Decision(verdict, detail, [event])


async def _decide(
    tx: asyncpg.Connection, req: PaymentRequest, notice: Notice
) -> tuple[str, str | None, str | None]:
    """(verdict, detail, outcome): outcome is succeeded / failed / mismatch when this answer
    decided the payment, None when it was already decided."""
    asked = Money(amount=req.amount, currency=req.currency)
    detail = notice.failure_reason
    status: str = notice.status
    outcome: str = notice.status
    if notice.amount != asked:
        detail = f"gateway reports {notice.amount}, we asked {asked}"
        status, outcome = "manual_review", "mismatch"
    if not await store.decide(tx, req, status, notice.gateway_ref):
        if req.status == status:
            return "duplicate", None, None
        return "late", f"payment is {req.status}, gateway says {status}", None
    return ("mismatch" if outcome == "mismatch" else "applied"), detail, outcome


def _payload(req: PaymentRequest, notice: Notice, **extra: Any) -> PaymentDecisionPayload:
    def m(amount: int) -> Money:
        return Money(amount=amount, currency=req.currency)

    assert req.order_id is not None and req.transaction_id is not None
    return PaymentDecisionPayload(
        order_id=req.order_id,
        transaction_id=req.transaction_id,
        buyer_id=req.buyer_id,
        total=m(req.total),
        wallet_part=m(req.wallet_part),
        gateway_part=m(req.gateway_part),
        gateway_ref=notice.gateway_ref,
        **extra,
    )


async def _order_decision(
    tx: asyncpg.Connection,
    cause: Envelope,
    req: PaymentRequest,
    notice: Notice,
    outcome: str,
    detail: str | None,
) -> Envelope:
    assert req.order_id is not None
    open_states = ("funds_frozen", "payment_requested")
    if outcome == "mismatch":
        await set_order_state(tx, req.order_id, "manual_review", open_states, detail)
        return PaymentNeedsReview.caused_by(
            cause, _payload(req, notice, reason_code="amount_mismatch", detail=detail)
        )
    if outcome == "succeeded":
        await set_order_state(tx, req.order_id, "paid", open_states)
        return PaymentSucceeded.caused_by(cause, _payload(req, notice))
    return PaymentFailed.caused_by(
        cause,
        _payload(
            req,
            notice,
            reason_code=notice.failure_reason or "gateway_declined",
            detail=f"gateway {notice.gateway_ref} declined the payment",
        ),
    )


def _top_up_result(
    cause: Envelope, req: PaymentRequest, notice: Notice, outcome: str, detail: str | None
) -> Envelope:
    assert req.wallet_operation_id is not None
    return TopUpGatewayResult.caused_by(
        cause,
        TopUpGatewayResultPayload(
            operation_id=req.wallet_operation_id,
            buyer_id=req.buyer_id,
            amount=Money(amount=req.amount, currency=req.currency),
            status=outcome,
            gateway_ref=notice.gateway_ref,
            detail=detail,
        ),
    )
