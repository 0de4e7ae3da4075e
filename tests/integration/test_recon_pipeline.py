"""A day of real orders reconciles to zero (issue 8): orders paid partly by card through the
whole pipeline (the simulator over HTTP, webhook, stages, sweeper), one of them refunded to
the card, then `reconcile` against the simulator's statement for the day: every line matched,
no exception, and the gateway clearing account nets to exactly zero once the gateway's fees
and payout are booked. A database and a simulator of its own, so the day holds only these."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from contracts.events.refunds import RefundRequested, RefundRequestedPayload
from infra.settings import Settings
from tests.support.gateway_edge import pipeline, reaches, uid
from tests.support.pipeline import (
    assert_audit_clean,
    eventually,
    fund_wallet,
    order_submitted,
    publish,
    seed_catalogue,
)
from tests.support.services import scratch_database
from workers.recon.run import fetch_statement, reconcile

pytestmark = pytest.mark.integration


@pytest.fixture
async def scratch(services: Settings) -> AsyncIterator[tuple[Settings, asyncpg.Pool]]:
    suffix = f"recon_day_{uuid.uuid4().hex[:8]}"
    async with scratch_database(services, suffix) as p:
        yield services.model_copy(update={"pg_database": f"{services.pg_database}_{suffix}"}), p


async def test_a_day_of_orders_reconciles_and_the_clearing_account_nets_to_zero(
    scratch: tuple[Settings, asyncpg.Pool], producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    settings, pool = scratch
    await seed_catalogue(pool)
    buyer = uid("buyer-day")
    await fund_wallet(pool, buyer, 500, f"recon-day:{buyer}")
    orders = [
        order_submitted(uid("ord-day"), buyer, {"sku-tee": 1}),  # 500 wallet + 1,000 card
        order_submitted(uid("ord-day"), buyer, {"sku-novel": 1}),  # 2,500 card
        order_submitted(uid("ord-day"), buyer, {"sku-mug": 2}),  # 1,780 card
    ]
    env = {"PAYFLOW_SIM_DB": str(tmp_path / "sim.db")}
    async with pipeline(settings, pool, producer, env) as running:
        for order in orders:
            await publish(producer, order)
        for order in orders:
            await reaches(pool, order.correlation_id, "settled")
        mug = orders[2].correlation_id
        rid = uid("rf-day")
        await publish(
            producer,
            RefundRequested.new(
                mug,
                RefundRequestedPayload(
                    refund_id=rid, order_id=mug, reason="the mugs came back broken"
                ),
                idempotency_key=rid,
            ),
        )

        async def refunded() -> bool:
            status = await pool.fetchval("SELECT status FROM refunds WHERE refund_id = $1", rid)
            return bool(status == "completed")

        await eventually(refunded, 60, "the mugs refunded to the card")
        day = datetime.now(UTC).date()
        statement = await fetch_statement(running, day)
        report = await reconcile(pool, day, statement, source="gateway", grace_s=900)
        again = await reconcile(pool, day, statement, source="gateway", grace_s=900)

    assert report["exceptions"] == {} and report["ok"] is True, report["exceptions"]
    assert report["matched"] == 4  # three charges and the refund
    assert again["matched"] == 4 and again["exceptions"] == {}
    clearing = await pool.fetchval(
        "SELECT total FROM accounts WHERE purpose = 'gateway_clearing' AND currency = 'EUR'"
    )
    assert clearing == 0
    booked = await pool.fetchval(
        "SELECT count(*) FROM ledger_transactions WHERE kind = 'gateway_settlement'"
    )
    assert booked == 4  # once per line, however often the day is run
    await assert_audit_clean(pool)
