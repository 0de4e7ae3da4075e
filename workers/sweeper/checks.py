"""One check of one due payment (an order's or a wallet top-up's): ask the gateway, send
again a request it never received while the payment window is open (or void an expired
payment), then act in one transaction through the fenced decision path. The claim is
committed before the gateway calls, so no lock is held while we wait for the gateway, and no
two replicas make one check."""

import asyncpg
import structlog

from contracts.envelope import Envelope
from contracts.events.payments import PaymentFailed, PaymentNeedsReview
from contracts.events.wallet import TopUpGatewayResult
from contracts.money import Money
from infra.settings import Settings
from workers.callback_handling import decision
from workers.gateway.port import Charge, ChargeCreated, Gateway, GatewayRefused, GatewayUnknown
from workers.gateway.registry import Gateways
from workers.order_state import set_order_state
from workers.payments import rules as payment_rules
from workers.payments.rules import evidence_of
from workers.review.cases import Kind, open_case
from workers.runtime import outbox
from workers.runtime.metrics import SWEEPER_CHECKS
from workers.runtime.outbox import Message
from workers.sweeper import outcomes, rules, store
from workers.sweeper.rules import Plan
from workers.sweeper.store import DuePayment

log = structlog.get_logger()
PRODUCER = "sweeper"
NEVER_RECEIVED = "gateway_never_received"
UNRESOLVED = "payment_unresolved"


def stale_after_s(settings: Settings) -> float:
    return settings.gateway_timeout_s * 2 + 30


async def check(
    pool: asyncpg.Pool, gateways: Gateways, settings: Settings, due: DuePayment
) -> list[Message]:
    """Returns the messages to publish (already in the outbox)."""
    n = due.checks + 1
    expired = due.status == "expired"
    key = (rules.void_task_key if expired else rules.sync_task_key)(due.payment_id, n)
    async with pool.acquire() as conn:
        if not await store.claim(conn, key, stale_after_s(settings), due.payment_id):
            return []
    adapter = gateways.adapter(due.adapter)
    if expired:
        return await _void(pool, adapter, settings, due, key, n)
    try:
        charges = await adapter.query_payment(due.payment_id)
    except GatewayUnknown as unknown:
        plan = rules.after_unknown(n, settings.sweeper_schedule)
        unanswered: dict[str, object] = {"check": n, "unknown": unknown.evidence}
        return await _act(pool, settings, due, key, n, plan, unanswered)
    except GatewayRefused as refused:  # a query refused is a misconfiguration: keep asking
        plan = rules.after_unknown(n, settings.sweeper_schedule)
        refusal: dict[str, object] = {"check": n, "refused": f"{refused.code}: {refused.detail}"}
        return await _act(pool, settings, due, key, n, plan, refusal)
    in_flight = rules.in_flight_s(settings.gateway_timeout_s, settings.gateway_attempts)
    plan = rules.after_query(
        charges,
        n,
        due.age_s,
        in_flight,
        settings.sweeper_schedule,
        window_left_s=due.window_left_s,
        resend_margin_s=settings.gateway_timeout_s,
    )
    evidence: dict[str, object] = {"check": n, "charges": _seen(charges)}
    created = None
    if plan.action == "resend":
        plan, evidence["resend"], created = await _resend(adapter, due, n, settings)
    return await _act(pool, settings, due, key, n, plan, evidence, created)


async def _resend(
    adapter: Gateway, due: DuePayment, n: int, settings: Settings
) -> tuple[Plan, dict[str, object], ChargeCreated | None]:
    """The gateway never got the create call: send it again, built as it was first built, with the key and amount recorded then (the gateway replays, never charges twice).
    One call per check: the schedule is the retry."""
    req = payment_rules.charge_request(
        due.payment_id,
        due.reference,
        Money(amount=due.amount, currency=due.currency),
        due.idempotency_key,
    )
    schedule = settings.sweeper_schedule
    try:
        created = await adapter.create_payment(req)
    except GatewayRefused as refused:
        note = f"resend refused: {refused.code}: {refused.detail}"
        return rules.after_resend("refused", n, schedule), evidence_of(refused.exchange, note), None
    except GatewayUnknown as unknown:
        note = f"resend: {unknown.evidence}"
        return rules.after_resend("unknown", n, schedule), evidence_of(unknown.exchange, note), None
    note = f"resend created: {created.status}"
    return rules.after_resend("accepted", n, schedule), evidence_of(created.exchange, note), created


def _seen(charges: list[Charge]) -> list[dict[str, object]]:
    return [
        {"gateway_ref": c.gateway_ref, "status": c.status, "amount": c.amount.amount}
        for c in charges
    ]


async def _act(
    pool: asyncpg.Pool,
    settings: Settings,
    due: DuePayment,
    key: str,
    n: int,
    plan: Plan,
    evidence: dict[str, object],
    created: ChargeCreated | None = None,
) -> list[Message]:
    SWEEPER_CHECKS.labels(plan.result).inc()
    log.info("sweeper_check", payment_id=due.payment_id, check=n, result=plan.result)
    events: list[Envelope] = []
    async with pool.acquire() as conn, conn.transaction():
        row = await store.lock_payment(conn, due.payment_id)
        if row is None or row["checks"] != due.checks:  # someone else made this check
            return []
        evidence = {**evidence, "result": plan.result}
        if plan.action == "decide":
            for notice in plan.notices:
                decided = await decision.apply(conn, None, notice)
                events.extend(decided.events)
        if created is not None:
            await store.record_resent(conn, due.payment_id, created)
        moved = False
        if plan.action == "never_received":
            if moved := await store.move(
                conn, due.payment_id, row["fence"], "failed", store.OPEN, evidence
            ):
                events.append(await _never_received(conn, due, key, plan.result))
        elif plan.action == "manual_review":
            if moved := await store.move(
                conn, due.payment_id, row["fence"], "manual_review", store.OPEN, evidence
            ):
                events.append(await _unresolved(conn, due, key, n))
        still_open = await store.is_open(conn, due.payment_id)
        next_in = plan.next_in_s if still_open else None
        if still_open and next_in is None:
            next_in = rules.step_s(n, settings.sweeper_schedule) or settings.sweeper_schedule[-1]
        await store.note_check(conn, due.payment_id, n, next_in, None if moved else evidence)
        await store.finish(conn, key, plan.result)
        return await outbox.store(conn, PRODUCER, None, events)


async def _never_received(
    conn: asyncpg.Connection, due: DuePayment, key: str, result: str
) -> Envelope:
    """The payment failed: the gateway never got it (and refused it again, or the window
    closed). An order is cancelled by settlement; a top-up is failed by the wallet stage."""
    if result == "resend_refused":
        detail = "the gateway has no record of the request and refused it when sent again"
    else:
        detail = "the gateway has no record of the request and the payment window closed"
    if due.order_id is None:
        op = due.reference
        payload = await outcomes.top_up_payload(conn, op, "failed", NEVER_RECEIVED)
        return TopUpGatewayResult.new(op, payload, idempotency_key=f"{key}/failed")
    decided = await outcomes.decision_payload(conn, due.order_id, NEVER_RECEIVED, detail)
    return PaymentFailed.new(due.order_id, decided, idempotency_key=f"{key}/failed")


async def _unresolved(conn: asyncpg.Connection, due: DuePayment, key: str, n: int) -> Envelope:
    """Still unknown after the last check: a human decides, with the evidence kept."""
    detail = f"payment {due.payment_id} still unknown after {n} status queries"
    kind: Kind = "payment_unresolved" if due.order_id else "top_up_unresolved"
    evidence = {"checks": n, "reference": due.reference, "amount": due.amount}
    evidence["currency"] = due.currency
    subject = f"payment:{due.payment_id}"
    ids = {"order_id": due.order_id, "payment_id": due.payment_id}
    await open_case(conn, kind, subject, detail, evidence, **ids)
    if due.order_id is None:
        op = due.reference
        payload = await outcomes.top_up_payload(conn, op, "unresolved", detail)
        return TopUpGatewayResult.new(op, payload, idempotency_key=f"{key}/review")
    await set_order_state(conn, due.order_id, "manual_review", store.OPEN_ORDER, detail)
    decided = await outcomes.decision_payload(conn, due.order_id, UNRESOLVED, detail)
    return PaymentNeedsReview.new(due.order_id, decided, idempotency_key=f"{key}/review")


async def _void(
    pool: asyncpg.Pool, adapter: Gateway, settings: Settings, due: DuePayment, key: str, n: int
) -> list[Message]:
    """Close an expired payment at the gateway: void what is still pending; a charge that
    succeeded meanwhile (not voidable) is money we did not sell for, decided as a late
    success and refunded (workers/late_payments). Asked again while the gateway is unsure."""
    notices = []
    status, next_in = "expired", None
    try:
        charges = await adapter.query_payment(due.payment_id)
        pending = [c.gateway_ref for c in charges if c.status == "pending"]
        for i, ref in enumerate(pending if adapter.can_void else []):
            vkey = rules.void_key(due.payment_id) + ("" if i == 0 else f":{ref}")
            await adapter.void_payment(ref, vkey)
        notices = [rules.notice_for(c) for c in charges if c.status == "succeeded"]
        if notices:
            result = "late_success"
        elif pending and adapter.can_void:
            result, status = "voided", "voided"
        else:
            result = "nothing_to_void"
        evidence: dict[str, object] = {"void": n, "charges": _seen(charges), "result": result}
    except GatewayRefused as refused:  # paid meanwhile: the next pass finds the success
        result, next_in = "not_voidable", rules.step_s(n, settings.sweeper_schedule)
        evidence = {"void": n, "result": result, "refused": f"{refused.code}: {refused.detail}"}
    except GatewayUnknown as unknown:
        result, next_in = "void_unknown", rules.step_s(n, settings.sweeper_schedule)
        evidence = {"void": n, "result": result, "unknown": unknown.evidence}
    SWEEPER_CHECKS.labels(result).inc()
    log.info("sweeper_void", payment_id=due.payment_id, attempt=n, result=result)
    events: list[Envelope] = []
    async with pool.acquire() as conn, conn.transaction():
        row = await store.lock_payment(conn, due.payment_id)
        if row is None or row["checks"] != due.checks:
            return []
        for notice in notices:
            events.extend((await decision.apply(conn, None, notice)).events)
        moved = status == "voided" and await store.move(
            conn, due.payment_id, row["fence"], "voided", ("expired",), evidence
        )
        await store.note_check(conn, due.payment_id, n, next_in, None if moved else evidence)
        await store.finish(conn, key, result)
        return await outbox.store(conn, PRODUCER, None, events)
