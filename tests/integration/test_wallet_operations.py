"""Top-ups and withdrawals through the real pipeline: a top-up credits the wallet only after
the gateway confirms; a withdrawal freezes, then pays out or returns the money."""

import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from contracts.envelope import Envelope
from contracts.events.wallet import (
    TopUpRequested,
    TopUpRequestedPayload,
    WithdrawalRequested,
    WithdrawalRequestedPayload,
)
from contracts.money import Money
from infra.settings import Settings
from tests.support.pipeline import (
    assert_audit_clean,
    balances,
    eventually,
    fund_wallet,
    publish,
    simulator,
    start_workers,
)
from workers.ledger import accounts

pytestmark = pytest.mark.integration


def _eur(amount: int) -> Money:
    return Money(amount=amount, currency="EUR")


def _top_up(buyer: str, amount: int) -> Envelope:
    op = f"top-{uuid.uuid4().hex[:8]}"
    return TopUpRequested.new(
        op,
        TopUpRequestedPayload(operation_id=op, buyer_id=buyer, amount=_eur(amount)),
        idempotency_key=op,
    )


def _withdrawal(buyer: str, amount: int) -> Envelope:
    op = f"wd-{uuid.uuid4().hex[:8]}"
    return WithdrawalRequested.new(
        op,
        WithdrawalRequestedPayload(
            operation_id=op, buyer_id=buyer, amount=_eur(amount), destination="iban-test-1"
        ),
        idempotency_key=op,
    )


async def _status(pool: asyncpg.Pool, op: str) -> str | None:
    status: str | None = await pool.fetchval(
        "SELECT status FROM wallet_operations WHERE operation_id = $1", op
    )
    return status


async def test_top_ups_and_withdrawals(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    buyer = f"buyer-wallet-{uuid.uuid4().hex[:6]}"
    await fund_wallet(pool, buyer, 10_000, f"wallet-test:{buyer}")
    paid = _top_up(buyer, 5_000)
    declined = _top_up(buyer, 2_013)  # the simulator declines amounts ending in 13
    # The callback reports another amount: it decides nothing, the gateway's record does.
    odd = _top_up(buyer, 3_099)
    out = _withdrawal(buyer, 4_000)
    returned = _withdrawal(buyer, 1_113)  # the bank refuses payouts ending in 13
    too_much = _withdrawal(buyer, 1_000_000)
    ops = {
        paid: "completed",
        declined: "failed",
        odd: "completed",
        out: "completed",
        returned: "failed",
        too_much: "failed",
    }

    async with simulator(services) as children:
        start_workers(children)
        for event in ops:
            await publish(producer, event)
        await publish(producer, paid)  # redelivered: no second credit

        async def all_closed() -> bool:
            return all([await _status(pool, e.correlation_id) == want for e, want in ops.items()])

        await eventually(all_closed, 90, "every wallet operation closed")

    # 10,000 + 5,000 + 3,099 topped up - 4,000 paid out; the returned withdrawal is available
    # again.
    assert await balances(pool, accounts.wallet(buyer, "EUR").account_id) == (14_099, 14_099, 0)
    postings = await pool.fetch(
        """SELECT idempotency_key FROM ledger_transactions
           WHERE idempotency_key = ANY($1::text[])""",
        [f"top_up:{paid.correlation_id}", f"withdrawal:{out.correlation_id}"],
    )
    assert len(postings) == 2
    # Through the gateway port: each top-up charged once by the card adapter, each payout
    # answered (paid 201, declined 402), the exchanges kept.
    charges = await pool.fetch(
        """SELECT adapter, response_status, gateway_ref FROM payment_requests
           WHERE wallet_operation_id = ANY($1::text[])""",
        [paid.correlation_id, declined.correlation_id, odd.correlation_id],
    )
    assert [(c["adapter"], c["response_status"]) for c in charges] == [("direct", 201)] * 3
    assert all(c["gateway_ref"] for c in charges)
    payout_answers = await pool.fetch(
        "SELECT operation_id, response_status FROM payouts WHERE operation_id = ANY($1::text[])",
        [out.correlation_id, returned.correlation_id],
    )
    assert {p["operation_id"]: p["response_status"] for p in payout_answers} == {
        out.correlation_id: 201,
        returned.correlation_id: 402,
    }
    holds = await pool.fetch(
        "SELECT order_id, state FROM fund_holds WHERE order_id = ANY($1::text[])",
        [out.correlation_id, returned.correlation_id],
    )
    assert {h["order_id"]: h["state"] for h in holds} == {
        out.correlation_id: "confirmed",
        returned.correlation_id: "cancelled",
    }
    await assert_audit_clean(pool)
