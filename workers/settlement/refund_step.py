"""Refunding a settled order, a sub-order or items: the wallet share to the buyer's wallet
now, the card share through the gateway (sent by the refund job, outside this batch: no
stage waits on the gateway), merchants and fees debited in proportion, items restocked
when asked. One balanced posting; `order.refunded` once every share is back."""

import hashlib

import asyncpg

from contracts.base import Refusal
from contracts.envelope import Envelope
from contracts.events.outcomes import (
    OrderRefunded,
    OrderRefundedPayload,
    OrderRefundRejected,
    RefundRejectedPayload,
)
from contracts.events.refunds import RefundRequested, RefundRequestedPayload
from contracts.money import Money
from workers.ledger import accounts, postings
from workers.refunds import rules, store
from workers.refunds.rules import Ask, Plan
from workers.runtime.errors import PermanentError

NO_CURRENCY = "XXX"  # ISO 4217: a refused request for an unknown order that named no amount


async def refund(tx: asyncpg.Connection, event: RefundRequested) -> list[Envelope]:
    r = event.payload
    digest = _digest(r)
    seen = await store.refund_digest(tx, r.refund_id)
    if seen == digest:
        return []  # the same refund again: already answered
    if seen is not None:
        raise PermanentError("refund_id_reused", f"refund {r.refund_id} exists with other content")
    order = await store.lock_order(tx, r.order_id)
    if order is None:
        what = f"no sub-order {r.sub_order_id}" if r.sub_order_id else "no such order"
        code = "unknown_sub_order" if r.sub_order_id else "unknown_order"
        return await _refuse(
            tx, event, digest, NO_CURRENCY, Refusal(code, f"order {r.order_id}: {what}")
        )
    ask = Ask(
        r.sub_order_id,
        r.amount.amount if r.amount else None,
        r.amount.currency if r.amount else None,
        tuple((i.sku_id, i.quantity) for i in r.items),
        r.restock,
    )
    subs = await store.sub_orders(tx, order.transaction_id)
    plan = rules.plan(order.paid, subs, ask)
    if isinstance(plan, Refusal):
        return await _refuse(tx, event, digest, order.paid.currency, plan)
    try:
        async with tx.transaction():  # a refused refund moves nothing
            await _pay_back(tx, r, digest, order, plan)
    except asyncpg.CheckViolationError as exc:
        # A merchant's balance no longer covers its share (already paid out).
        no = Refusal("merchant_balance_insufficient", str(exc).splitlines()[0])
        return await _refuse(tx, event, digest, order.paid.currency, no)
    if plan.to_card:
        return []  # order.refunded follows the gateway's answer on the card share
    cur = order.paid.currency
    payload = OrderRefundedPayload(
        order_id=r.order_id,
        refund_id=r.refund_id,
        sub_order_id=r.sub_order_id,
        amount=Money(amount=plan.amount, currency=cur),
        to_wallet=Money(amount=plan.to_wallet, currency=cur),
    )
    return [OrderRefunded.caused_by(event, payload)]


async def _pay_back(
    tx: asyncpg.Connection, r: RefundRequestedPayload, digest: str, order: store.Order, plan: Plan
) -> None:
    cur = order.paid.currency
    charge = await store.paying_charge(tx, order.transaction_id) if plan.to_card else None
    if plan.to_card and charge is None:
        raise PermanentError("no_paying_charge", f"order {r.order_id} has no succeeded charge")
    merchants = {
        p.merchant_id: await accounts.ensure(tx, accounts.merchant_payable(p.merchant_id, cur))
        for p in plan.parts
    }
    legs = rules.refund_legs(
        plan,
        merchants=merchants,
        clearing=await accounts.ensure(tx, accounts.platform("order_clearing", cur)),
        fee_income=await accounts.ensure(tx, accounts.platform("fee_income", cur)),
        wallet=await accounts.ensure(tx, accounts.wallet(order.buyer_id, cur)),
        card_refunds=await accounts.ensure(tx, accounts.platform(rules.CARD_REFUNDS, cur)),
    )
    await postings.post(
        tx,
        kind="refund",
        order_id=r.order_id,
        idempotency_key=f"refund:{r.refund_id}",
        currency=cur,
        legs=legs,
    )
    await store.record_accepted(tx, r, digest, cur, plan)
    if plan.restock:
        await store.restock(tx, plan)
    if charge is not None:
        await store.open_card_refund(tx, r, charge, cur, plan.to_card)


def _digest(r: RefundRequestedPayload) -> str:
    return hashlib.sha256(r.model_dump_json().encode()).hexdigest()


async def _refuse(
    tx: asyncpg.Connection, event: RefundRequested, digest: str, currency: str, no: Refusal
) -> list[Envelope]:
    r = event.payload
    await store.record_rejected(tx, r, digest, no.code, currency)
    payload = RefundRejectedPayload(
        order_id=r.order_id, refund_id=r.refund_id, reason_code=no.code, detail=no.detail
    )
    return [OrderRefundRejected.caused_by(event, payload)]
