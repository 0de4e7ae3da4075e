"""A transaction whose numbers do not add up never settles (issue 8): settlement checks the
details, the legs and the totals before confirming anything, releases every hold and stops
the order in manual review with a settlement_check case; an operator's refund returns the
gateway charge and cancels it. Through the running pipeline and the real simulator."""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from infra.settings import Settings
from tests.support.gateway_edge import pipeline, reaches, uid
from tests.support.pipeline import (
    assert_audit_clean,
    balances,
    eventually,
    fund_wallet,
    order_submitted,
    publish,
    seed_catalogue,
)
from tests.support.services import scratch_database
from workers.review.actions import resolve

pytestmark = pytest.mark.integration

WALLET_PART = 500  # of a 15.00 order: the other 10.00 is charged at the gateway


async def test_a_transaction_that_does_not_add_up_goes_to_review_not_to_the_ledger(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    buyer = uid("buyer-chk")
    await fund_wallet(pool, buyer, WALLET_PART, f"checks:{buyer}")
    order = order_submitted(uid("ord-chk"), buyer, {"sku-tee": 1})
    oid, wallet = order.correlation_id, f"buyer:{buyer}:wallet:EUR"
    async with pipeline(services, pool, producer, {}, without=("settlement",)):
        await publish(producer, order)
        await reaches(pool, oid, "paid")
        # A detail no longer adds up to what the buyer paid (a bug upstream, a bad edit).
        await pool.execute(
            """UPDATE transaction_details d SET subsidy = 1 FROM transactions t
               WHERE d.transaction_id = t.transaction_id AND t.order_id = $1""",
            oid,
        )
    async with pipeline(services, pool, producer, {}):
        await reaches(pool, oid, "manual_review")
        case = await pool.fetchrow(
            "SELECT case_id, reason FROM review_cases WHERE kind = 'settlement_check' "
            "AND order_id = $1",
            oid,
        )
        assert "the details add up to 1499 paid by the buyer, the total is 1500" in case["reason"]
        posted = await pool.fetchval(
            "SELECT count(*) FROM ledger_transactions WHERE order_id = $1 AND kind = 'purchase'",
            oid,
        )
        assert posted == 0  # money that does not add up is never posted
        holds = await pool.fetchval(
            "SELECT count(*) FROM fund_holds WHERE order_id = $1 AND state = 'held'", oid
        )
        assert holds == 0 and await balances(pool, wallet) == (WALLET_PART, WALLET_PART, 0)

        done = await resolve(pool, producer, case["case_id"], "refund", "bad detail", "erin")
        await reaches(pool, oid, "cancelled")

        async def refunded() -> bool:
            status = await pool.fetchval(
                "SELECT status FROM gateway_refunds WHERE refund_id = $1",
                done.detail["refund_id"],
            )
            return bool(status == "succeeded")

        await eventually(refunded, 60, "the gateway charge refunded")
    await pool.execute(  # put the detail back: the rest of the session audits these tables
        """UPDATE transaction_details d SET subsidy = 0 FROM transactions t
           WHERE d.transaction_id = t.transaction_id AND t.order_id = $1""",
        oid,
    )
    await assert_audit_clean(pool)


@pytest.fixture
async def scratch(services: Settings) -> AsyncIterator[tuple[Settings, asyncpg.Pool]]:
    suffix = f"settle_{uuid.uuid4().hex[:8]}"
    async with scratch_database(services, suffix) as p:
        yield services.model_copy(update={"pg_database": f"{services.pg_database}_{suffix}"}), p


async def test_a_sale_that_would_break_an_invariant_moves_nothing_and_goes_to_review(
    scratch: tuple[Settings, asyncpg.Pool], producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    """The stock row no longer holds what the order held (a bad manual edit): selling it
    would take `held` below zero. Nothing of the sale happens (no hold confirmed, nothing
    posted); the case says the holds could not be released either, for an operator to fix.
    A database of its own: the edit breaks the stock invariant on purpose."""
    settings, pool = scratch
    await seed_catalogue(pool)
    buyer = uid("buyer-inv")
    await fund_wallet(pool, buyer, WALLET_PART, f"invariant:{buyer}")
    order = order_submitted(uid("ord-inv"), buyer, {"sku-novel": 1})
    oid = order.correlation_id
    env = {"PAYFLOW_SIM_DB": str(tmp_path / "sim.db")}
    async with pipeline(settings, pool, producer, env, without=("settlement",)):
        await publish(producer, order)
        await reaches(pool, oid, "paid")
        await pool.execute(
            "UPDATE stock SET available = available + held, held = 0 WHERE sku_id = 'sku-novel'"
        )
    async with pipeline(settings, pool, producer, env):
        await reaches(pool, oid, "manual_review")
    reason = await pool.fetchval(
        "SELECT reason FROM review_cases WHERE kind = 'settlement_check' AND order_id = $1", oid
    )
    assert reason.startswith("settling would break an invariant")
    assert "the holds could not be released either" in reason
    posted = await pool.fetchval(
        "SELECT count(*) FROM ledger_transactions WHERE order_id = $1 AND kind = 'purchase'", oid
    )
    confirmed = await pool.fetchval(
        "SELECT count(*) FROM fund_holds WHERE order_id = $1 AND state <> 'held'", oid
    )
    assert posted == 0 and confirmed == 0  # the whole sale rolled back
