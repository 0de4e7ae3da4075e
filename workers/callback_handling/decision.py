"""The fenced decision on a payment: one path for a gateway callback and a sweeper query.

A payment leaves an open state once (`store.decide`, conditional on the fence read under the
row lock). Money never goes unanswered: a success for a payment or order we will not sell
('late_success'), or another charge for a payment already decided ('second_charge'), opens
a late refund (workers/late_payments), posts the money to the ledger and tells operators.
The same charge again is a 'duplicate'; a failure after a decision is 'late' (no money
moved). A callback whose amount is not what we asked decides nothing: the sweeper asks the gateway,
and only the gateway's own record differing goes to a human ('mismatch' -> review).
Refund answers ('refund' notices) are decided in refund_answer.py.
"""

from typing import Any

import asyncpg

from contracts.envelope import Envelope
from contracts.events.payments import (
    LateMoneyPayload,
    PaymentDecisionPayload,
    PaymentFailed,
    PaymentLateMoney,
    PaymentNeedsReview,
    PaymentSucceeded,
)
from contracts.events.wallet import TopUpGatewayResult, TopUpGatewayResultPayload
from contracts.money import Money
from infra.settings import get_settings
from workers.callback_handling import refund_answer, review_cases, store
from workers.callback_handling.outcomes import Decision, event
from workers.callback_handling.store import OPEN_STATES, PaymentRequest
from workers.gateway.port import Notice
from workers.late_payments import records, rules
from workers.order_state import set_order_state
from workers.runtime.errors import PermanentError


async def apply(
    tx: asyncpg.Connection,
    cause: Envelope | None,
    notice: Notice,
    *,
    late_action: str | None = None,
) -> Decision:
    """Decide what `notice` says, inside `tx`. `cause` is the event the decision is published
    as caused by; None when the sweeper learned it by asking the gateway. `late_action`
    (refund | review) defaults to PAYFLOW_LATE_PAYMENT_ACTION."""
    if notice.kind == "refund":
        return await refund_answer.apply(tx, cause, notice)
    req = await store.lock_request(tx, notice.payment_id)
    if req is None:
        raise PermanentError("unmatched_callback", f"no payment {notice.payment_id}")
    if cause is not None and notice.amount != Money(amount=req.amount, currency=req.currency):
        return await _disputed(tx, req, notice)
    succeeded = notice.status == "succeeded"
    seen = succeeded and await records.charge_seen(tx, notice.gateway_ref)
    await records.record_charge(
        tx,
        payment_id=req.payment_id,
        gateway_ref=notice.gateway_ref,
        amount=notice.amount.amount,
        currency=notice.amount.currency,
        status=notice.status,
        source="sync" if cause is None else "callback",
    )
    state = rules.PaymentState(req.status, req.gateway_ref, req.order_state)
    verdict = rules.payment_verdict(state, succeeded, notice.gateway_ref, seen)
    if verdict in ("late_success", "second_charge"):
        action = late_action or get_settings().late_payment_action
        return await _late_money(tx, cause, req, notice, verdict, action)
    if verdict == "duplicate":
        return Decision("duplicate", None, [])
    if verdict == "late":
        return Decision("late", f"payment is {req.status}, gateway says {notice.status}", [])
    verdict, detail, outcome = await _decide(tx, req, notice)
    if outcome is None:
        return Decision(verdict, detail, [])
    if req.wallet_operation_id is not None:
        return Decision(verdict, detail, [_top_up_result(cause, req, notice, outcome, detail)])
    decided = await _order_decision(tx, cause, req, notice, outcome, detail)
    return Decision(verdict, detail, [decided])


async def _disputed(tx: asyncpg.Connection, req: PaymentRequest, notice: Notice) -> Decision:
    """A callback whose amount is not what we asked decides nothing: the gateway's own
    record does (the sweeper asks at once, with our authenticated request), so the outcome
    is the same whether the callback or the query comes first. A real difference in the
    gateway's record goes to review from there; recorded here for operators either way."""
    asked = Money(amount=req.amount, currency=req.currency)
    detail = f"callback says {notice.amount} {notice.status}, we asked {asked}"
    if req.status in OPEN_STATES:
        evidence = {
            "step": "disputed_callback",
            "callback_id": notice.callback_id,
            "gateway_ref": notice.gateway_ref,
            "status": notice.status,
            "amount": notice.amount.amount,
            "currency": notice.amount.currency,
        }
        await store.ask_gateway_now(tx, req, evidence)
        detail += ": asking the gateway"
    return Decision("mismatch", detail, [])


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
    if outcome == "mismatch":
        await review_cases.amount_mismatch(tx, req, notice, detail)
    return ("mismatch" if outcome == "mismatch" else "applied"), detail, outcome


async def _late_money(
    tx: asyncpg.Connection,
    cause: Envelope | None,
    req: PaymentRequest,
    notice: Notice,
    verdict: str,
    action: str,
) -> Decision:
    """Money we did not sell for: a late refund (or one held for review), its posting, and
    an event operators see. An open payment is closed with the charge it got."""
    if req.status in OPEN_STATES:
        await store.decide(tx, req, "succeeded", notice.gateway_ref)
    if verdict == "second_charge":
        detail = f"payment {req.payment_id} was already charged as {req.gateway_ref}"
    elif req.order_state in rules.ORDER_NOT_SOLD:
        detail = f"order {req.order_id} is {req.order_state}"
    else:
        detail = f"payment {req.payment_id} is {req.status}"
    status = "held_for_review" if action == "review" else "requested"
    refund_id = records.late_refund_id(notice.gateway_ref)
    created = await records.open_late_refund(
        tx,
        payment_id=req.payment_id,
        gateway_ref=notice.gateway_ref,
        adapter=req.adapter,
        amount=notice.amount.amount,
        currency=notice.amount.currency,
        reason=verdict,
        status=status,
        evidence={"step": "opened", "callback_id": notice.callback_id, "detail": detail},
    )
    if not created:
        return Decision("duplicate", f"late refund {refund_id} exists", [])
    if action == "review":
        await review_cases.late_money_held(tx, req, notice, refund_id, detail)
    await records.post_money_arrived(
        tx, refund_id, req.order_id, notice.amount.amount, notice.amount.currency
    )
    payload = LateMoneyPayload(
        order_id=req.order_id,
        wallet_operation_id=req.wallet_operation_id,
        payment_id=req.payment_id,
        gateway_ref=notice.gateway_ref,
        refund_id=refund_id,
        amount=notice.amount,
        reason=verdict,
        action="held_for_review" if action == "review" else "refund_requested",
        detail=detail,
    )
    late = event(PaymentLateMoney, cause, req.correlation_id, notice.callback_id, payload)
    return Decision(verdict, detail, [late])


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


# The states an order's payment decision moves it on from.
AWAITING_PAYMENT = ("funds_frozen", "payment_requested")


async def _order_decision(
    tx: asyncpg.Connection,
    cause: Envelope | None,
    req: PaymentRequest,
    notice: Notice,
    outcome: str,
    detail: str | None,
) -> Envelope:
    assert req.order_id is not None
    if outcome == "mismatch":
        await set_order_state(tx, req.order_id, "manual_review", AWAITING_PAYMENT, detail)
    elif outcome == "succeeded":
        await set_order_state(tx, req.order_id, "paid", AWAITING_PAYMENT)
    return order_decided(cause, req, notice, outcome, detail)


def order_decided(
    cause: Envelope | None, req: PaymentRequest, notice: Notice, outcome: str, detail: str | None
) -> Envelope:
    """The event that tells settlement how the order's payment was decided (`outcome`:
    succeeded, failed or mismatch); the order's state moved already."""
    assert req.order_id is not None
    key = notice.callback_id
    if outcome == "mismatch":
        payload = _payload(req, notice, reason_code="amount_mismatch", detail=detail)
        return event(PaymentNeedsReview, cause, req.order_id, key, payload)
    if outcome == "succeeded":
        return event(PaymentSucceeded, cause, req.order_id, key, _payload(req, notice))
    payload = _payload(
        req,
        notice,
        reason_code=notice.failure_reason or "gateway_declined",
        detail=f"gateway {notice.gateway_ref} declined the payment",
    )
    return event(PaymentFailed, cause, req.order_id, key, payload)


def _top_up_result(
    cause: Envelope | None, req: PaymentRequest, notice: Notice, outcome: str, detail: str | None
) -> Envelope:
    assert req.wallet_operation_id is not None
    payload = TopUpGatewayResultPayload(
        operation_id=req.wallet_operation_id,
        buyer_id=req.buyer_id,
        amount=Money(amount=req.amount, currency=req.currency),
        status=outcome,
        gateway_ref=notice.gateway_ref,
        detail=detail,
    )
    return event(TopUpGatewayResult, cause, req.wallet_operation_id, notice.callback_id, payload)
