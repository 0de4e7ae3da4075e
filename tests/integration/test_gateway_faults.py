"""Every fault mode of the gateway simulator, one order each, through the whole money pipeline
(the simulator over HTTP, the webhook, every stage and the sweeper; real Kafka, Postgres and
Redis): the order reaches its true final state, the buyer's wallet ends as that state says,
every charge the gateway made is one we have on record (and an extra one is refunded through
the gateway), and the audit is clean.

Why each ends where it does: a charge the gateway made is found by the sweeper when nothing
announces it (lost, unannounced, badly signed, answer withheld); a request the gateway never
received is re-sent while the payment window is open; a callback whose amount is not what
we asked decides nothing, the gateway's own record (asked at once) does."""

from dataclasses import dataclass

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from infra.settings import Settings
from tests.support.gateway_edge import FAST, gateway_charges, payment, pipeline, reaches, uid
from tests.support.pipeline import (
    assert_audit_clean,
    balances,
    eventually,
    fund_wallet,
    order_submitted,
    publish,
    seed_catalogue,
)

pytestmark = pytest.mark.integration

WALLET_PART = 500  # of the 15.00 order: the rest is charged at the gateway
# Short enough for a test, longer than the client's 1 s timeout where it must be.
SIM_TIMINGS = {
    "PAYFLOW_SIM_LATENCY_MS": "300",
    "PAYFLOW_SIM_HANG_MS": "4000",
    "PAYFLOW_SIM_LATE_MS": "1500",
}


@dataclass(frozen=True)
class Case:
    fault: str
    final: str  # the order's final state
    extra_charges: int = 0  # charges the gateway made beyond the one kept


CASES = [
    Case("latency", "settled"),
    Case("error_before_charge", "cancelled"),
    Case("timeout_after_charge", "settled"),
    Case("duplicate_callback", "settled"),
    Case("late_callback", "settled"),
    Case("reorder_callbacks", "settled"),
    Case("lost_callback", "settled"),
    Case("wrong_amount", "settled"),  # the callback lies; the gateway's record decides
    Case("bad_signature", "settled"),
    Case("unannounced_charge", "settled"),
    Case("double_charge", "settled", extra_charges=1),
]


@pytest.mark.parametrize("case", CASES, ids=[c.fault for c in CASES])
async def test_each_fault_ends_in_the_true_final_state(
    case: Case, services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    buyer = uid(f"buyer-{case.fault[:12]}")
    await fund_wallet(pool, buyer, WALLET_PART, f"faults:{buyer}")
    order = order_submitted(uid(f"ord-{case.fault[:12]}"), buyer, {"sku-tee": 1})
    env = {"PAYFLOW_SIM_FAULTS": f"{case.fault}=1", **SIM_TIMINGS}
    # A request the gateway never received is re-sent until the payment window closes.
    window_s = 10 if case.fault == "error_before_charge" else FAST["payment_window_s"]
    async with pipeline(services, pool, producer, env, payment_window_s=window_s) as settings:
        await publish(producer, order)
        await reaches(pool, order.correlation_id, case.final, timeout_s=90)
        row = await payment(pool, order.correlation_id)
        charged = await gateway_charges(settings, row["payment_id"])
        assert len(charged) == (0 if case.final == "cancelled" else 1) + case.extra_charges
        ours = {
            r["gateway_ref"]
            for r in await pool.fetch(
                "SELECT gateway_ref FROM gateway_charges WHERE payment_id = $1", row["payment_id"]
            )
        }
        if case.final != "manual_review":  # a review keeps the callback's word for a human
            assert set(charged) <= ours, "a charge the gateway made is not on our record"
        if case.extra_charges:
            await _refunded(pool, set(charged) - {row["gateway_ref"]})
    wallet = await balances(pool, f"buyer:{buyer}:wallet:EUR")
    expected = {
        "settled": (0, 0, 0),  # the wallet part was spent
        "cancelled": (WALLET_PART, WALLET_PART, 0),  # the hold was released
        "manual_review": (WALLET_PART, 0, WALLET_PART),  # held until a human decides
    }[case.final]
    assert wallet == expected
    if case.fault == "bad_signature":
        rejected = await pool.fetchval(
            """SELECT count(*) FROM webhook_rejections WHERE reason_code = 'bad_signature'
               AND convert_from(body, 'UTF8')::jsonb ->> 'payment_id' = $1""",
            row["payment_id"],
        )
        assert rejected >= 1
    await assert_audit_clean(pool)


async def _refunded(pool: asyncpg.Pool, refs: set[str]) -> None:
    async def done() -> bool:
        statuses = await pool.fetch(
            "SELECT status FROM gateway_refunds WHERE gateway_ref = ANY($1::text[])", list(refs)
        )
        return len(statuses) == len(refs) and all(r["status"] == "succeeded" for r in statuses)

    await eventually(done, 60, f"extra charges {refs} refunded through the gateway")
