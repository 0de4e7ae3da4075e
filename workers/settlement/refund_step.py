"""Refunding part of a settled sub-order to the buyer's wallet, at most what the buyer paid."""

import hashlib

import asyncpg

from contracts.envelope import Envelope
from contracts.events.outcomes import (
    OrderRefunded,
    OrderRefundedPayload,
    OrderRefundRejected,
    RefundRejectedPayload,
)
from contracts.events.refunds import RefundRequested
from workers.ledger import accounts, postings
from workers.runtime.errors import PermanentError
from workers.settlement import store
from workers.settlement.refunds import refund_legs, refundable


class _Refused(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


async def refund(tx: asyncpg.Connection, event: RefundRequested) -> list[Envelope]:
    r = event.payload
    digest = hashlib.sha256(r.model_dump_json().encode()).hexdigest()
    seen = await store.refund_digest(tx, r.refund_id)
    if seen == digest:
        return []  # the same refund again: already answered
    if seen is not None:
        raise PermanentError("refund_id_reused", f"refund {r.refund_id} exists with other content")
    try:
        async with tx.transaction():  # a refused refund moves nothing
            await _pay_back(tx, event)
    except _Refused as no:
        await store.record_refund(tx, r, digest, "rejected", no.code)
        return [
            OrderRefundRejected.caused_by(
                event,
                RefundRejectedPayload(
                    order_id=r.order_id,
                    refund_id=r.refund_id,
                    reason_code=no.code,
                    detail=no.detail,
                ),
            )
        ]
    await store.record_refund(tx, r, digest, "completed")
    return [
        OrderRefunded.caused_by(
            event,
            OrderRefundedPayload(
                order_id=r.order_id,
                refund_id=r.refund_id,
                sub_order_id=r.sub_order_id,
                amount=r.amount,
            ),
        )
    ]


async def _pay_back(tx: asyncpg.Connection, event: RefundRequested) -> None:
    r = event.payload
    line = await store.lock_refundable(tx, r.order_id, r.sub_order_id)
    if line is None:
        raise _Refused("unknown_sub_order", f"order {r.order_id} has no sub-order {r.sub_order_id}")
    if line["state"] != "settled":
        raise _Refused("order_not_settled", f"order {r.order_id} is {line['state']}")
    if line["currency"] != r.amount.currency:
        raise _Refused("currency_mismatch", f"the order was paid in {line['currency']}")
    left = refundable(line["gross"], line["subsidy"], line["refunded"])
    if r.amount.amount > left:
        raise _Refused(
            "exceeds_captured",
            f"{r.amount.amount} asked, {left} of sub-order {r.sub_order_id} refundable",
        )
    cur = r.amount.currency
    legs = refund_legs(
        wallet=await accounts.ensure(tx, accounts.wallet(line["buyer_id"], cur)),
        clearing=await accounts.ensure(tx, accounts.platform("order_clearing", cur)),
        merchant=await accounts.ensure(tx, accounts.merchant_payable(line["merchant_id"], cur)),
        fee_income=await accounts.ensure(tx, accounts.platform("fee_income", cur)),
        amount=r.amount.amount,
        gross=line["gross"],
        fee=line["fee"],
    )
    try:
        await postings.post(
            tx,
            kind="refund",
            order_id=r.order_id,
            idempotency_key=f"refund:{r.refund_id}",
            currency=cur,
            legs=legs,
        )
    except asyncpg.CheckViolationError as exc:
        # The merchant's balance no longer covers its share (already paid out).
        raise _Refused("merchant_balance_insufficient", str(exc).splitlines()[0]) from exc
