"""An operator's action on a review case, through the same events and TCC paths as the
workers (never a direct balance update): the action's state changes, its events (in the
outbox, published after the commit), its log entry and the case's closing are one
transaction.

Idempotent: the request key is the case id and the action, so the same command again answers
with the first outcome (and publishes what the first one could not); another action on a
resolved case is refused. Refusals are logged too.
"""

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg
from aiokafka import AIOKafkaProducer

from contracts.envelope import Envelope
from contracts.events.payments import PaymentFailed, PaymentSucceeded
from contracts.events.refunds import RefundRequested, RefundRequestedPayload
from workers.late_payments import records
from workers.review import cases, rules, store
from workers.review.cases import Case
from workers.review.facts import facts, operation_id, refund_id
from workers.review.rules import Action, Facts
from workers.runtime import outbox
from workers.runtime.outbox import Message
from workers.runtime.publisher import publish
from workers.sweeper.outcomes import decision_payload
from workers.wallet import operator

PRODUCER = "review"


class ReviewRefused(Exception):
    """The action does not fit the case as our records stand: nothing changed."""


@dataclass(frozen=True)
class Outcome:
    case_id: int
    action: str
    outcome: str
    repeated: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


def request_key(case_id: int, action: str) -> str:
    return f"review:{case_id}:{action}"


async def resolve(
    pool: asyncpg.Pool,
    producer: AIOKafkaProducer | None,
    case_id: int,
    action: Action,
    reason: str,
    operator: str,
    gateway_ref: str | None = None,
) -> Outcome:
    """Apply `action` to case `case_id` (or answer its first outcome again). Raises
    ReviewRefused, after logging the refusal, when it does not fit."""
    if not reason.strip():
        raise ReviewRefused("give the reason for the action (--reason)")
    if not operator.strip():
        raise ReviewRefused("no operator name: pass --operator or set PAYFLOW_OPERATOR")
    async with pool.acquire() as conn, conn.transaction():
        row = await store.case(conn, case_id, lock=True)
        if row is None:
            raise ReviewRefused(f"no review case {case_id}")
        first = await cases.action_by_key(conn, request_key(case_id, action))
        if first is not None:  # the same command again: its first outcome
            detail = _json(first["detail"])
            messages = await store.unpublished(conn, detail.get("events", []))
            result = Outcome(case_id, action, first["outcome"], True, detail)
        else:
            c = store.case_of(row)
            result, messages = await _act(conn, c, action, reason, operator, gateway_ref)
    if result.outcome == "refused":
        raise ReviewRefused(f"case {case_id}: {action} refused: {result.detail['why']}")
    if messages and producer is not None:
        await publish(producer, pool, messages)
    return result


async def _act(
    conn: asyncpg.Connection,
    c: Case,
    action: Action,
    reason: str,
    operator: str,
    gateway_ref: str | None,
) -> tuple[Outcome, list[Message]]:
    """Apply the action, or log why it was refused (under its own key, so the same action
    may still be applied once the case allows it)."""
    key = request_key(c.case_id, action)
    refusal = await _refusal(conn, c, action, gateway_ref)
    if refusal is not None:
        refused = f"{key}:refused:{uuid.uuid4().hex[:12]}"
        why = {"why": refusal}
        await cases.log_action(
            conn,
            case_id=c.case_id,
            operator=operator,
            action=action,
            reason=reason,
            request_key=refused,
            outcome="refused",
            detail=why,
        )
        return Outcome(c.case_id, action, "refused", False, why), []
    events, detail = await _apply(conn, c, action, reason, gateway_ref)
    messages = await outbox.store(conn, PRODUCER, None, events)
    detail["events"] = [str(e.event_id) for e in events]
    await cases.log_action(
        conn,
        case_id=c.case_id,
        operator=operator,
        action=action,
        reason=reason,
        request_key=key,
        outcome="applied",
        detail=detail,
    )
    await cases.close_case(conn, c.case_id, action, operator)
    return Outcome(c.case_id, action, "applied", False, detail), messages


def _json(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value)


async def _refusal(
    conn: asyncpg.Connection, c: Case, action: Action, gateway_ref: str | None
) -> str | None:
    if c.state == "resolved":
        return f"the case was resolved already by {c.resolved_by} ({c.resolution})"
    f = await facts(conn, c)
    if gateway_ref is not None and action == "succeed" and action in rules.FITS[c.kind]:
        if f.gateway_ref is not None and f.gateway_ref != gateway_ref:
            return f"the payment was charged as {f.gateway_ref}, not {gateway_ref}"
        f = Facts(**{**f.__dict__, "gateway_ref": f.gateway_ref or gateway_ref})
    return rules.plan(action, f).refused


async def _apply(
    conn: asyncpg.Connection, c: Case, action: Action, reason: str, gateway_ref: str | None
) -> tuple[list[Envelope], dict[str, Any]]:
    f = await facts(conn, c)
    ref = f.gateway_ref or gateway_ref
    plan = rules.plan(action, Facts(**{**f.__dict__, "gateway_ref": ref}))
    key = request_key(c.case_id, action)
    events: list[Envelope] = []
    detail: dict[str, Any] = {"steps": list(plan.steps), "kind": c.kind}
    for step in plan.steps:
        if step in ("payment_succeeded", "payment_failed"):
            pay = await store.payment(conn, c.payment_id, c.order_id)
            assert pay is not None
            status = "succeeded" if step == "payment_succeeded" else "failed"
            await store.decide_payment(conn, pay["payment_id"], status, ref, reason)
        elif step == "record_charge":
            await _record_charge(conn, c, ref)
        elif step in ("publish_top_up_result", "cancel_withdrawal"):
            events += await _wallet_step(conn, c, step, action, ref, reason)
        elif step == "publish_confirm":
            assert c.order_id is not None
            p = await decision_payload(conn, c.order_id, "operator_confirmed", reason[:500])
            p = p.model_copy(update={"gateway_ref": ref})
            events.append(PaymentSucceeded.new(c.order_id, p, idempotency_key=f"{key}/confirm"))
        elif step == "publish_cancel":
            assert c.order_id is not None
            code = f"{rules.OPERATOR_REASON}{action}"
            p = await decision_payload(conn, c.order_id, code, reason[:500])
            events.append(PaymentFailed.new(c.order_id, p, idempotency_key=f"{key}/cancel"))
        elif step == "reopen_refund":
            seen = {"step": "operator", "case_id": c.case_id, "detail": reason[:500]}
            await records.set_refund(conn, refund_id(c), "requested", seen)
            detail["refund_id"] = refund_id(c)
        elif step == "open_charge_refund":
            detail["refund_id"] = await _refund_charge(conn, c, reason)
        elif step == "publish_order_refund":
            assert c.order_id is not None
            payload = RefundRequestedPayload(
                refund_id=f"review-{c.case_id}", order_id=c.order_id, reason=reason[:500]
            )
            events.append(RefundRequested.new(c.order_id, payload, idempotency_key=key))
            detail["refund_id"] = payload.refund_id
    return events, detail


async def _record_charge(conn: asyncpg.Connection, c: Case, ref: str | None) -> None:
    """The charge the operator confirmed with the gateway, in our charge records (source
    'operator'), so the audit's gateway checks and reconciliation see it."""
    pay = await store.payment(conn, c.payment_id, c.order_id)
    assert pay is not None and ref is not None
    await records.record_charge(conn, payment_id=pay["payment_id"], gateway_ref=ref,
                                amount=pay["amount"], currency=pay["currency"],
                                status="succeeded", source="operator")  # fmt: skip


async def _wallet_step(
    conn: asyncpg.Connection, c: Case, step: str, action: Action, ref: str | None, why: str
) -> list[Envelope]:
    """Through the wallet stage's own path: its TopUpGatewayResult (the stage credits or
    fails the top-up), or its TCC Cancel of a withdrawal's hold."""
    op_id = await operation_id(conn, c)
    assert op_id is not None
    key = request_key(c.case_id, action)
    if step == "cancel_withdrawal":
        return await operator.cancel_withdrawal(conn, op_id, why[:500], f"{key}/cancel")
    status: Literal["succeeded", "failed"] = "succeeded" if action == "succeed" else "failed"
    return [await operator.top_up_result(conn, op_id, status, ref, why[:500], f"{key}/top_up")]


async def _refund_charge(conn: asyncpg.Connection, c: Case, reason: str) -> str:
    """The charge of an order that will not be sold goes back to the card: a late refund
    (sent by the sweeper's refund job), its money posted into the late-payment liability."""
    pay = await store.payment(conn, c.payment_id, c.order_id)
    assert pay is not None and pay["gateway_ref"] is not None
    ref = pay["gateway_ref"]
    charge = await store.charged(conn, ref)
    amount = charge["amount"] if charge is not None else pay["amount"]
    currency = charge["currency"] if charge is not None else pay["currency"]
    refund_id = records.late_refund_id(ref)
    created = await records.open_late_refund(
        conn,
        payment_id=pay["payment_id"],
        gateway_ref=ref,
        adapter=pay["adapter"],
        amount=amount,
        currency=currency,
        reason="late_success",  # money for an order that will not be sold
        status="requested",
        evidence={"step": "opened", "case_id": c.case_id, "kind": c.kind, "detail": reason[:500]},
    )
    if created:
        await records.post_money_arrived(conn, refund_id, c.order_id, amount, currency)
    return refund_id
