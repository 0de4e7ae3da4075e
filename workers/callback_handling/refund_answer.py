"""The gateway's answer on a refund we sent (callback or the refund job's query): a late
refund moves the money back out of the late-payment liability; the card share of an order
refund completes that refund. Only refunds we opened are known; anything else is
dead-lettered. Decided once, under the refund's row lock."""

import asyncpg

from contracts.envelope import Envelope
from contracts.events.outcomes import OrderRefunded
from contracts.events.payments import LateMoneyPayload, PaymentLateMoney
from contracts.money import Money
from workers.callback_handling.outcomes import Decision, event
from workers.gateway.port import Notice
from workers.late_payments import records, rules
from workers.late_payments.records import LateRefund
from workers.refunds import card
from workers.review.openers import refund_held
from workers.runtime.errors import PermanentError


async def apply(tx: asyncpg.Connection, cause: Envelope | None, notice: Notice) -> Decision:
    found = await records.lock_refund(tx, notice.refund_id) if notice.refund_id else None
    if found is None:
        raise PermanentError("unmatched_callback", f"no gateway refund {notice.refund_id}")
    verdict = rules.refund_verdict(found.status, notice.status)
    if verdict != "refund_applied":
        return Decision(verdict, f"refund is {found.status}, gateway says {notice.status}", [])
    evidence: dict[str, str | None] = {
        "step": "answer",
        "callback_id": notice.callback_id,
        "status": notice.status,
    }
    succeeded = notice.status == "succeeded"
    if not succeeded:
        evidence["reason"] = notice.failure_reason
    if found.kind == "order_refund" and found.status == "failed" and succeeded:
        # The card share already went to the wallet when the gateway said it failed: the
        # buyer now has it twice. Nothing is moved automatically; a human decides.
        why = "refunded to the card after its failure was paid to the wallet"
        evidence["detail"] = why
        await records.set_refund(tx, found.refund_id, "held_for_review", evidence)
        await refund_held(tx, found, why, evidence)
        return Decision("refund_conflict", evidence["detail"], [])
    status = "succeeded" if succeeded else "failed"
    await records.set_refund(tx, found.refund_id, status, evidence, refund_ref=notice.refund_ref)
    if found.kind == "order_refund":
        return Decision(
            verdict, notice.failure_reason, await _order_refund(tx, cause, found, notice)
        )
    if succeeded:
        await records.post_money_returned(
            tx, found.refund_id, found.order_id, found.amount, found.currency
        )
    return Decision(verdict, notice.failure_reason, [_late_money(cause, found, notice)])


async def _order_refund(
    tx: asyncpg.Connection, cause: Envelope | None, found: LateRefund, notice: Notice
) -> list[Envelope]:
    assert found.order_refund_id is not None and found.order_id is not None
    payload = await card.settle(tx, found.order_refund_id, notice.status == "succeeded")
    if payload is None:  # already completed
        return []
    return [event(OrderRefunded, cause, found.order_id, notice.callback_id, payload)]


def _late_money(cause: Envelope | None, found: LateRefund, notice: Notice) -> Envelope:
    """Succeeded: the money leaves the liability; failed: operators are told."""
    payload = LateMoneyPayload(
        order_id=found.order_id,
        wallet_operation_id=found.wallet_operation_id,
        payment_id=found.payment_id,
        gateway_ref=found.gateway_ref,
        refund_id=found.refund_id,
        amount=Money(amount=found.amount, currency=found.currency),
        reason=found.reason,
        action="refund_succeeded" if notice.status == "succeeded" else "refund_failed",
        detail=notice.failure_reason,
    )
    correlation = found.order_id or found.wallet_operation_id or found.payment_id
    return event(PaymentLateMoney, cause, correlation, notice.callback_id, payload)
