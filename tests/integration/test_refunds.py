"""Refunds of a settled order through the running pipeline: back to the buyer's wallet,
never more than the buyer paid for the sub-order, each refund id at most once."""

import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from contracts.envelope import Envelope
from contracts.events.refunds import RefundRequested, RefundRequestedPayload
from contracts.money import Money
from infra.settings import Settings
from tests.support.pipeline import (
    assert_audit_clean,
    balances,
    eventually,
    fund_wallet,
    order_state,
    order_submitted,
    publish,
    seed_catalogue,
    simulator,
    start_workers,
)
from workers.ledger import accounts

pytestmark = pytest.mark.integration


def _refund(order_id: str, sub: int, amount: int, refund_id: str | None = None) -> Envelope:
    rid = refund_id or f"rf-{uuid.uuid4().hex[:8]}"
    return RefundRequested.new(
        order_id,
        RefundRequestedPayload(
            refund_id=rid,
            order_id=order_id,
            sub_order_id=f"{order_id}-{sub}",
            amount=Money(amount=amount, currency="EUR"),
            reason="damaged in transit",
        ),
        idempotency_key=rid,
    )


async def test_refunds_go_back_to_the_wallet_and_never_exceed_what_was_paid(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    buyer = f"buyer-refund-{uuid.uuid4().hex[:6]}"
    await fund_wallet(pool, buyer, 20_000, f"refund-topup:{buyer}")
    order_id = f"refund-{uuid.uuid4().hex[:8]}"
    # Sub-order 1: two tees of m-acme (3,000); sub-order 2: one novel of m-bolt (2,500).
    await publish(
        producer,
        order_submitted(order_id, buyer, {"sku-tee": 2, "sku-novel": 1}),
    )
    wallet = accounts.wallet(buyer, "EUR").account_id
    merchant = accounts.merchant_payable("m-acme", "EUR").account_id

    async with simulator(services) as children:
        start_workers(children)

        async def settled() -> bool:
            return await order_state(pool, order_id) == "settled"

        await eventually(settled, 60, f"{order_id} settled")
        assert (await balances(pool, wallet))[1] == 20_000 - 5_500

        first = _refund(order_id, 1, 1_000)
        too_much = _refund(order_id, 1, 2_500)  # only 2,000 of 3,000 left after the first
        unknown = _refund(f"nope-{order_id}", 1, 100)
        rest = _refund(order_id, 1, 2_000)
        for event in (first, too_much, unknown):
            await publish(producer, event)
        await publish(producer, first)  # redelivered
        await publish(producer, first.model_copy(update={"event_id": uuid.uuid4()}))  # retried
        await publish(producer, rest)
        ids = [e.payload.refund_id for e in (first, too_much, unknown, rest)]

        async def all_answered() -> bool:
            n = await pool.fetchval(
                "SELECT count(*) FROM refunds WHERE refund_id = ANY($1::text[])", ids
            )
            return bool(n == 4)

        await eventually(all_answered, 60, "every refund answered")

    status = {
        r["refund_id"]: (r["status"], r["status_reason"])
        for r in await pool.fetch(
            "SELECT refund_id, status, status_reason FROM refunds WHERE refund_id = ANY($1::text[])",
            ids,
        )
    }
    assert status[first.payload.refund_id] == ("completed", None)
    assert status[too_much.payload.refund_id] == ("rejected", "exceeds_captured")
    assert status[unknown.payload.refund_id] == ("rejected", "unknown_sub_order")
    assert status[rest.payload.refund_id] == ("completed", None)
    assert (await balances(pool, wallet))[1] == 20_000 - 5_500 + 3_000
    fee_back = 18 * 1_000 // 3_000 + 18 * 2_000 // 3_000  # m-acme pays a 60 bps fee: 18
    # (Other orders may credit m-acme meanwhile: count this order's refund legs instead.)
    merchant_paid_back = await pool.fetchval(
        """SELECT sum(e.amount) FROM ledger_entries e JOIN ledger_transactions t
           USING (ledger_txn_id) WHERE t.order_id = $1 AND t.kind = 'refund'
           AND e.debit_account_id = $2""",
        order_id,
        merchant,
    )
    assert merchant_paid_back == 3_000 - fee_back
    await assert_audit_clean(pool)
