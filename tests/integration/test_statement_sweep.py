"""A second charge whose callbacks were all lost after its payment was decided: no callback
and no status query will ever tell us (the sweeper asks only about open payments), but the
gateway's statement lists it. The sweeper's statement sweep decides it through the fenced
path: recorded, posted as late money, refunded through the gateway. Against the real
simulator over HTTP (its own records, so the statement holds this test's charges only) and
a database of its own: the late refund it opens names a charge only that simulator knows, so
no other test's refund job may try to send it."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from contracts.money import Money
from infra.settings import Settings
from tests.support.gateway_edge import gateway, plant_payment, uid
from tests.support.pipeline import eventually
from tests.support.services import scratch_database
from workers.callback_handling import decision
from workers.gateway.port import Charge
from workers.gateway.registry import Gateways
from workers.payments.rules import charge_request
from workers.sweeper import rules, statement_sweep

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module")
async def pool(services: Settings) -> AsyncIterator[asyncpg.Pool]:
    async with scratch_database(services, "stmt") as p:
        yield p


async def charges(gateways: Gateways, payment_id: str) -> list[Charge]:
    found = await gateways.adapter("direct").query_payment(payment_id)
    return [c for c in found if c.status == "succeeded"]


async def test_a_second_charge_only_the_statement_shows_is_refunded(
    services: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    settings = services.model_copy(update={"statement_sweep_s": 60.0})
    order_id, payment_id = uid("ord-stmt"), uid("pay-stmt")
    async with pool.acquire() as conn:
        await plant_payment(
            conn,
            order_id=order_id,
            transaction_id=uid("txn-stmt"),
            payment_id=payment_id,
            order_state="payment_requested",
            status="pending",
            buyer="buyer-stmt",
        )
    env = {"PAYFLOW_SIM_FAULTS": "double_charge=1", "PAYFLOW_SIM_DB": str(tmp_path / "sim.db")}
    async with gateway(settings, env) as gateways:
        eur5 = Money(amount=500, currency="EUR")
        await gateways.adapter("direct").create_payment(
            charge_request(payment_id, order_id, eur5, payment_id)
        )

        async def both_charged() -> bool:
            return len(await charges(gateways, payment_id)) == 2

        await eventually(both_charged, 30, "the gateway charged twice")
        first, second = sorted(await charges(gateways, payment_id), key=lambda c: c.gateway_ref)
        async with pool.acquire() as conn, conn.transaction():  # first's callback: decided
            await decision.apply(conn, None, rules.notice_for(first))
        # second's callbacks are lost: nothing but the statement knows of it.

        now = datetime.now(UTC)
        messages = await statement_sweep.sweep(pool, gateways, settings, now)
        again = await statement_sweep.sweep(pool, gateways, settings, now)  # the same slot
        later = await statement_sweep.sweep(pool, gateways, settings, now + timedelta(seconds=60))

    assert [m.topic.endswith("orders.outcomes") for m in messages] == [True]
    assert again == [] and later == []  # claimed once per slot; nothing unseen afterwards
    payment = await pool.fetchrow(
        "SELECT status, gateway_ref FROM payment_requests WHERE payment_id = $1", payment_id
    )
    assert (payment["status"], payment["gateway_ref"]) == ("succeeded", first.gateway_ref)
    recorded = await pool.fetch(
        "SELECT gateway_ref, status FROM gateway_charges WHERE payment_id = $1", payment_id
    )
    assert {(r["gateway_ref"], r["status"]) for r in recorded} == {
        (first.gateway_ref, "succeeded"),
        (second.gateway_ref, "succeeded"),
    }
    late = await pool.fetchrow(
        "SELECT kind, reason, amount FROM gateway_refunds WHERE gateway_ref = $1",
        second.gateway_ref,
    )
    assert (late["kind"], late["reason"], late["amount"]) == ("late_payment", "second_charge", 500)
    posted = await pool.fetchval(
        "SELECT count(*) FROM ledger_transactions WHERE idempotency_key = $1",
        f"late_payment:late:{second.gateway_ref}",
    )
    assert posted == 1
