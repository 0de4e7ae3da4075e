"""The gateway-refund job: send due refunds to the gateway (late money, and the card share
of order refunds) and ask about pending ones.

Run by the sweeper every interval (`run_due`). Each refund is claimed in its own transaction
with FOR UPDATE SKIP LOCKED, so two sweeper replicas never work on one refund; the gateway
call carries the idempotency key `payflow:refund:<refund_id>`, so a retry after a crash can
never refund twice. A definite answer (succeeded, failed, refused) goes through the one
fenced decision path (`decision.apply`, as a refund notice), exactly like a refund callback.
An unknown answer is retried on the sweeper schedule, then held for review.
"""

import logging
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer

from contracts.money import Money
from infra.settings import Settings
from workers.callback_handling import decision
from workers.gateway.port import (
    Gateway,
    GatewayRefused,
    GatewayUnknown,
    Notice,
    Refund,
    RefundRequest,
)
from workers.gateway.registry import Gateways
from workers.late_payments import records
from workers.late_payments.records import LateRefund
from workers.review.openers import refund_held
from workers.runtime import outbox
from workers.runtime.outbox import Message
from workers.runtime.publisher import publish

log = logging.getLogger(__name__)
PRODUCER = "late_payments"
TO_SEND = ("requested", "unknown")
BATCH = 50


@dataclass(frozen=True)
class Step:
    """What one gateway answer does to a refund."""

    status: str  # pending | unknown | held_for_review | (decided by a notice)
    evidence: dict[str, str | int | None]
    next_try_in_s: float = 0.0
    notice: Notice | None = None  # a definite answer, decided like a callback


def idempotency_key(refund_id: str) -> str:
    return f"payflow:refund:{refund_id}"


def refund_notice(refund: LateRefund, status: str, reason: str | None, ref: str | None) -> Notice:
    return Notice(
        callback_id=f"sync:refund:{refund.refund_id}:{status}",
        kind="refund",
        payment_id=refund.payment_id,
        gateway_ref=refund.gateway_ref,
        status="succeeded" if status == "succeeded" else "failed",
        amount=Money(amount=refund.amount, currency=refund.currency),
        failure_reason=reason,
        refund_id=refund.refund_id,
        refund_ref=ref,
    )


def after_answer(refund: LateRefund, answer: Refund, grace_s: float) -> Step:
    seen: dict[str, str | int | None] = {"step": "sent", "status": answer.status}
    seen["refund_ref"] = answer.refund_ref
    if answer.status == "pending":
        return Step("pending", seen, next_try_in_s=grace_s)
    notice = refund_notice(refund, answer.status, answer.failure_reason, answer.refund_ref)
    return Step(answer.status, seen, notice=notice)


def after_unknown(refund: LateRefund, evidence: str, schedule: list[float]) -> Step:
    """Retried on the sweeper schedule; past its last step, a human looks."""
    seen: dict[str, str | int | None] = {"step": "unknown", "evidence": evidence}
    seen["attempt"] = refund.attempts + 1
    if refund.attempts >= len(schedule):
        return Step("held_for_review", seen)
    return Step("unknown", seen, next_try_in_s=schedule[refund.attempts])


async def run_due(
    pool: asyncpg.Pool,
    gateways: Gateways,
    settings: Settings,
    producer: AIOKafkaProducer | None = None,
) -> int:
    """Send due late refunds and ask about pending ones past the callback grace; returns how
    many were worked on. Events go to the outbox with the change and, given a producer, are
    published after the commit (otherwise the outbox keeps them for a relay)."""
    done = 0
    for statuses in (TO_SEND, ("pending",)):
        while done < BATCH:
            messages = await _one(pool, gateways, settings, statuses)
            if messages is None:
                break
            done += 1
            if producer is not None and messages:
                await publish(producer, pool, messages)
    return done


async def _one(
    pool: asyncpg.Pool, gateways: Gateways, settings: Settings, statuses: tuple[str, ...]
) -> list[Message] | None:
    async with pool.acquire() as conn, conn.transaction():
        claimed = await records.claim_due(conn, statuses, 1)
        if not claimed:
            return None
        refund = claimed[0]
        try:
            adapter = gateways.adapter(refund.adapter)
        except ValueError as unknown_adapter:  # configuration changed: a human decides
            seen: dict[str, str | int | None] = {"step": "held", "evidence": str(unknown_adapter)}
            await records.set_refund(conn, refund.refund_id, "held_for_review", seen)
            await refund_held(conn, refund, f"gateway {refund.adapter} is not configured", seen)
            return []
        try:
            if refund.status == "pending":
                step = await _query(refund, adapter, settings)
            else:
                answer = await adapter.refund(
                    RefundRequest(
                        refund_id=refund.refund_id,
                        gateway_ref=refund.gateway_ref,
                        payment_id=refund.payment_id,
                        amount=Money(amount=refund.amount, currency=refund.currency),
                        reason=refund.reason,
                        idempotency_key=idempotency_key(refund.refund_id),
                    )
                )
                step = after_answer(refund, answer, settings.callback_grace_s)
        except GatewayUnknown as unknown:
            step = after_unknown(refund, unknown.evidence, settings.sweeper_schedule)
        except GatewayRefused as refused:
            reason = f"{refused.code}: {refused.detail}"
            step = Step(
                "failed", {"step": "refused"}, notice=refund_notice(refund, "failed", reason, None)
            )
        log.info("late refund %s: %s", refund.refund_id, step.status)
        if step.notice is None:
            await records.set_refund(
                conn,
                refund.refund_id,
                step.status,
                step.evidence,
                next_try_in_s=step.next_try_in_s,
                tried=refund.status != "pending",
            )
            if step.status == "held_for_review":
                why = f"refund outcome still {refund.status} after {refund.attempts} tries"
                await refund_held(conn, refund, why, step.evidence)
            return []
        await records.set_refund(conn, refund.refund_id, refund.status, step.evidence)
        decided = await decision.apply(conn, None, step.notice)
        return await outbox.store(conn, PRODUCER, None, decided.events)


def after_pending(refund: LateRefund, grace_s: float, review_after_s: float) -> Step:
    """Still pending at the gateway: asked again on an interval growing with its age (a
    card refund can take days at the bank), until a human must look."""
    seen: dict[str, str | int | None] = {"step": "query", "status": "pending"}
    if refund.age_s >= review_after_s:
        seen["detail"] = f"still pending {int(refund.age_s)} s after it was opened"
        return Step("held_for_review", seen)
    return Step("pending", seen, next_try_in_s=max(grace_s, min(refund.age_s / 4, 3600.0)))


async def _query(refund: LateRefund, adapter: Gateway, settings: Settings) -> Step:
    found = await adapter.query_refund(refund.refund_id)
    if found is None:  # the gateway never saw it: send again (same idempotency key)
        return Step("requested", {"step": "query", "status": "not_found"})
    if found.status == "pending":
        return after_pending(refund, settings.callback_grace_s, settings.refund_review_after_s)
    notice = refund_notice(refund, found.status, found.failure_reason, found.refund_ref)
    return Step(found.status, {"step": "query", "status": found.status}, notice=notice)
