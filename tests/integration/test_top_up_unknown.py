"""Wallet top-ups with an unknown gateway outcome behave like order payments: bounded attempts
with the same key, then `unknown` with the evidence; the wallet partition moves on and the
sweeper resolves the top-up through the decision path (credited once), fails one the gateway
never received once its window closed, and sends one it cannot resolve to review. The real
simulator over HTTP (seeded fault modes), webhook, callback stage, wallet stage and sweeper,
real Kafka and Postgres."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from contracts.events.wallet import (
    TopUpRequested,
    TopUpRequestedPayload,
    WithdrawalRequested,
    WithdrawalRequestedPayload,
)
from contracts.money import Money
from infra.settings import Settings
from tests.support.gateway_edge import partition_of, pipeline, uid
from tests.support.pipeline import assert_audit_clean, balances, eventually, fund_wallet, publish
from workers.gateway.registry import Gateways
from workers.gateway_simulator.faults import Faults
from workers.ledger import accounts
from workers.runtime.consumer import StageRunner
from workers.runtime.health import Health
from workers.wallet.gateway_calls import top_up_payment_id
from workers.wallet.step import WalletOperations

pytestmark = pytest.mark.integration

EUR = "EUR"
FAULTS = {"timeout_after_charge": 0.5, "error_before_charge": 0.5, "lost_callback": 1.0}
SIM_ENV = {
    "PAYFLOW_SIM_FAULTS": ",".join(f"{k}={v:g}" for k, v in FAULTS.items()),
    # The charge is made but its answer withheld longer than both create attempts wait
    # (2 x 1 s, tests.support.gateway_edge.FAST), not so long that stopping the simulator
    # waits for it.
    "PAYFLOW_SIM_HANG_MS": "5000",
}


def _top_up(buyer: str, op: str, amount: int) -> TopUpRequested:
    payload = TopUpRequestedPayload(
        operation_id=op, buyer_id=buyer, amount=Money(amount=amount, currency=EUR)
    )
    return TopUpRequested.new(op, payload, idempotency_key=op)


def _op_hit_by(want: set[str], prefix: str) -> str:
    """An operation id whose charge the seeded simulator hits with exactly the faults of
    FAULTS named in `want` (docs/gateway-simulator.md: decided per payment id)."""
    faults = Faults(FAULTS)
    for _ in range(10_000):
        op = uid(prefix)
        pid = top_up_payment_id(op)
        if {f for f in FAULTS if f != "lost_callback" and faults.hits(f, pid)} == want:
            return op
    raise AssertionError(f"no operation id hit by {want}")


async def _status(pool: asyncpg.Pool, op: str) -> str | None:
    found: str | None = await pool.fetchval(
        "SELECT status FROM wallet_operations WHERE operation_id = $1", op
    )
    return found


async def _closed_as(pool: asyncpg.Pool, op: str, status: str) -> None:
    async def check() -> bool:
        return await _status(pool, op) == status

    await eventually(check, 60, f"wallet operation {op} {status}")


async def _charge(pool: asyncpg.Pool, op: str) -> asyncpg.Record:
    row: asyncpg.Record = await pool.fetchrow(
        "SELECT * FROM payment_requests WHERE wallet_operation_id = $1", op
    )
    return row


@asynccontextmanager
async def wallet_stage(
    settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> AsyncIterator[None]:
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as http:
        stage = WalletOperations(pool, Gateways(settings, http), settings)
        task = asyncio.create_task(
            StageRunner(stage, settings, pool, producer, Health(stage.name)).run(stop)
        )
        try:
            yield
        finally:
            stop.set()
            await task


async def test_unknown_top_ups_move_on_and_the_sweeper_credits_or_fails_them(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    buyer = uid("buyer-topup")
    await fund_wallet(pool, buyer, 10_000, f"topup-unknown:{buyer}")
    wallet = accounts.wallet(buyer, EUR).account_id
    hang = _op_hit_by({"timeout_after_charge"}, "top-hang")
    never = _op_hit_by({"error_before_charge"}, "top-never")
    parts = services.topic_partitions
    # A withdrawal after the hanging top-up on its partition: it must not wait for it.
    later = next(
        op
        for op in (uid("wd-after") for _ in range(1000))
        if partition_of(op, parts) == partition_of(hang, parts)
    )
    withdrawal = WithdrawalRequested.new(
        later,
        WithdrawalRequestedPayload(
            operation_id=later,
            buyer_id=buyer,
            amount=Money(amount=1_000, currency=EUR),
            destination="iban-test-1",
        ),
        idempotency_key=later,
    )
    async with (
        pipeline(services, pool, producer, SIM_ENV, payment_window_s=8) as settings,
        wallet_stage(settings, pool, producer),
    ):
        await publish(producer, _top_up(buyer, hang, 5_000))
        await publish(producer, withdrawal)
        await publish(producer, _top_up(buyer, never, 2_000))
        await _closed_as(pool, later, "completed")
        await _closed_as(pool, hang, "completed")
        await _closed_as(pool, never, "failed")

    # 10,000 + 5,000 credited once (found by the sweeper's query) - 1,000 paid out.
    assert await balances(pool, wallet) == (14_000, 14_000, 0)
    charged = await _charge(pool, hang)
    assert charged["status"] == "succeeded" and charged["gateway_ref"]
    assert charged["idempotency_key"] == f"payflow:{charged['payment_id']}"
    evidence = json.loads(charged["evidence"])
    unanswered = [e for e in evidence[:2] if e.get("status") is None]
    assert len(unanswered) == 2 and unanswered[0]["request"] == unanswered[1]["request"]
    assert evidence[2]["result"] == "succeeded"
    source = await pool.fetch(
        "SELECT source FROM gateway_charges WHERE payment_id = $1", charged["payment_id"]
    )
    assert [s["source"] for s in source] == ["sync"]  # its callback was lost

    failed = await _charge(pool, never)
    assert failed["status"] == "failed"
    resends = [e["resend"] for e in json.loads(failed["evidence"]) if "resend" in e]
    assert resends and all(r["status"] == 503 for r in resends)
    reason = await pool.fetchval(
        "SELECT status_reason FROM wallet_operations WHERE operation_id = $1", never
    )
    assert reason == "gateway_never_received"
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM gateway_charges WHERE payment_id = $1", failed["payment_id"]
        )
        == 0
    )
    await assert_audit_clean(pool)


async def test_a_top_up_still_unknown_after_the_last_check_goes_to_review(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    buyer = uid("buyer-topup-down")
    op = uid("top-down")
    # No gateway listens at all: every create and every query goes unanswered.
    async with (
        pipeline(services, pool, producer, None) as settings,
        wallet_stage(settings, pool, producer),
    ):
        await publish(producer, _top_up(buyer, op, 3_000))
        await _closed_as(pool, op, "manual_review")
    row = await _charge(pool, op)
    assert row["status"] == "manual_review" and row["checks"] == 3
    assert "outcome unknown" in row["evidence"]
    reason = await pool.fetchval(
        "SELECT status_reason FROM wallet_operations WHERE operation_id = $1", op
    )
    assert reason == "payment_unresolved"
    assert await balances(pool, accounts.wallet(buyer, EUR).account_id) == (0, 0, 0)
    await assert_audit_clean(pool)
