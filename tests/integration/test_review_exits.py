"""The review cases that had no way out, resolved end to end through the running pipeline
(the real simulator over HTTP, or none at all; webhook, stages, wallet stage and sweeper in
this process; real Kafka and Postgres): an unresolved top-up is credited or failed by the
wallet stage, a withdrawal whose hold could not be confirmed is failed by a TCC Cancel, a
held order refund is sent again with its own key, and a success that lost the race to a
cancel is refunded. The same action again answers its first outcome, a conflicting one is
refused, and the audit is clean after each resolution."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from contracts.events.payments import PaymentFailed
from contracts.events.refunds import RefundRequested, RefundRequestedPayload
from contracts.events.wallet import (
    TopUpRequested,
    TopUpRequestedPayload,
    WithdrawalRequested,
    WithdrawalRequestedPayload,
)
from contracts.money import Money
from infra.settings import Settings
from tests.support.gateway_edge import gateway, payment, pipeline, reaches, uid, with_method
from tests.support.pipeline import (
    assert_audit_clean,
    balances,
    eventually,
    fund_wallet,
    order_submitted,
    publish,
    seed_catalogue,
)
from workers.gateway.registry import Gateways
from workers.ledger import accounts
from workers.refunds.store import card_refund_id
from workers.review.actions import ReviewRefused, resolve
from workers.runtime.consumer import StageRunner
from workers.runtime.health import Health
from workers.sweeper.outcomes import decision_payload
from workers.wallet import step as wallet_step
from workers.wallet.gateway_calls import top_up_payment_id
from workers.wallet.step import WalletOperations

pytestmark = pytest.mark.integration

EUR = "EUR"


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


async def value_is(pool: asyncpg.Pool, sql: str, arg: str, want: object, what: str) -> None:
    async def check() -> bool:
        return bool(await pool.fetchval(sql, arg) == want)

    await eventually(check, 60, what)


async def op_is(pool: asyncpg.Pool, op: str, status: str) -> None:
    sql = "SELECT status FROM wallet_operations WHERE operation_id = $1"
    await value_is(pool, sql, op, status, f"wallet operation {op} {status}")


async def case_where(pool: asyncpg.Pool, kind: str, column: str, value: str) -> int:
    sql = f"SELECT case_id FROM review_cases WHERE kind = '{kind}' AND {column} = $1"

    async def opened() -> bool:
        return bool(await pool.fetchval(sql, value))

    await eventually(opened, 60, f"a {kind} case for {value}")
    found: int = await pool.fetchval(sql, value)
    return found


def top_up(buyer: str, op: str, amount: int) -> TopUpRequested:
    payload = TopUpRequestedPayload(
        operation_id=op, buyer_id=buyer, amount=Money(amount=amount, currency=EUR)
    )
    return TopUpRequested.new(op, payload, idempotency_key=op)


async def test_an_unresolved_top_up_is_credited_or_failed_by_the_wallet_stage(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    buyer = uid("buyer-rx-top")
    wallet = accounts.wallet(buyer, EUR).account_id
    paid, unpaid = uid("top-rx-paid"), uid("top-rx-unpaid")
    # No gateway listens: both charges stay unknown past the sweeper's last query.
    async with (
        pipeline(services, pool, producer, None) as settings,
        wallet_stage(settings, pool, producer),
    ):
        await publish(producer, top_up(buyer, paid, 3_000))
        await publish(producer, top_up(buyer, unpaid, 2_000))
        await op_is(pool, paid, "manual_review")
        await op_is(pool, unpaid, "manual_review")
        paid_case = await case_where(
            pool, "top_up_unresolved", "payment_id", top_up_payment_id(paid)
        )
        unpaid_case = await case_where(
            pool, "top_up_unresolved", "payment_id", top_up_payment_id(unpaid)
        )
        with pytest.raises(ReviewRefused, match="still in manual_review: succeed or fail"):
            await resolve(pool, producer, paid_case, "explain", "looks fine", "ivy")
        with pytest.raises(ReviewRefused, match="pass --gateway-ref"):
            await resolve(pool, producer, paid_case, "succeed", "charged", "ivy")

        ref = uid("gw-console")
        why = "charge seen in the gateway console"
        done = await resolve(pool, producer, paid_case, "succeed", why, "ivy", gateway_ref=ref)
        assert done.detail["steps"] == [
            "payment_succeeded",
            "record_charge",
            "publish_top_up_result",
        ]
        await op_is(pool, paid, "completed")
        again = await resolve(pool, producer, paid_case, "succeed", why, "ivy", gateway_ref=ref)
        assert (again.outcome, again.repeated) == ("applied", True)
        with pytest.raises(ReviewRefused, match="resolved already by ivy"):
            await resolve(pool, producer, paid_case, "fail", "no", "eve")

        await resolve(pool, producer, unpaid_case, "fail", "gateway never charged it", "ivy")
        await op_is(pool, unpaid, "failed")
    assert await balances(pool, wallet) == (3_000, 3_000, 0)  # credited once, by the stage
    charges = await pool.fetch(
        "SELECT gateway_ref, source, status FROM gateway_charges WHERE payment_id = $1",
        top_up_payment_id(paid),
    )
    assert [tuple(c) for c in charges] == [(ref, "operator", "succeeded")]
    statuses = await pool.fetch(
        "SELECT status FROM payment_requests WHERE wallet_operation_id = ANY($1::text[]) "
        "ORDER BY status DESC",
        [paid, unpaid],
    )
    assert [s["status"] for s in statuses] == ["succeeded", "failed"]
    await assert_audit_clean(pool)


async def test_a_withdrawal_whose_hold_expired_is_failed_by_cancelling_its_hold(
    services: Settings,
    pool: asyncpg.Pool,
    producer: AIOKafkaProducer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    buyer = uid("buyer-rx-wd")
    await fund_wallet(pool, buyer, 5_000, f"review-exits:{buyer}")
    wallet = accounts.wallet(buyer, EUR).account_id
    op = uid("wd-rx")
    # The hold's deadline has passed by the time the payout's answer comes back.
    monkeypatch.setattr(wallet_step, "HOLD_TTL", timedelta(seconds=-1))
    payload = WithdrawalRequestedPayload(
        operation_id=op, buyer_id=buyer, amount=Money(amount=1_000, currency=EUR),
        destination="iban-test-1",
    )  # fmt: skip
    async with (
        pipeline(services, pool, producer, {}) as settings,
        wallet_stage(settings, pool, producer),
    ):
        await publish(producer, WithdrawalRequested.new(op, payload, idempotency_key=op))
        await op_is(pool, op, "manual_review")
        case_id = await case_where(pool, "hold_expired", "subject", f"withdrawal:{op}")
        assert await balances(pool, wallet) == (5_000, 4_000, 1_000)
        with pytest.raises(ReviewRefused, match="hold is still held: fail cancels it"):
            await resolve(pool, producer, case_id, "explain", "paid out", "jay")
        with pytest.raises(ReviewRefused, match="succeed does not fit a hold_expired case"):
            await resolve(pool, producer, case_id, "succeed", "paid", "jay", gateway_ref="g")

        why = "the bank returned the payout"
        done = await resolve(pool, producer, case_id, "fail", why, "jay")
        assert done.detail["steps"] == ["cancel_withdrawal"]
        again = await resolve(pool, producer, case_id, "fail", why, "jay")
        assert (again.outcome, again.repeated) == ("applied", True)
        with pytest.raises(ReviewRefused, match="resolved already by jay"):
            await resolve(pool, producer, case_id, "explain", "no", "eve")
    assert await pool.fetchval(
        "SELECT status FROM wallet_operations WHERE operation_id = $1", op
    ) == "failed"  # fmt: skip
    assert await balances(pool, wallet) == (5_000, 5_000, 0)  # the funds are back
    assert await pool.fetchval(
        "SELECT count(*) FROM fund_holds WHERE order_id = $1 AND state = 'held'", op
    ) == 0  # fmt: skip
    await assert_audit_clean(pool)


async def test_a_held_order_refund_is_sent_again_with_its_own_key(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    order = with_method(order_submitted(uid("ord-rx-rf"), uid("buyer-rx-rf"), {"sku-mug": 1}), "qr")
    oid = order.correlation_id
    rid = uid("rf-rx")
    payload = RefundRequestedPayload(refund_id=rid, order_id=oid, reason="returned")
    gid = card_refund_id(rid)
    async with pipeline(services, pool, producer, None) as settings:
        async with gateway(settings, {}):
            await publish(producer, order)
            await reaches(pool, oid, "settled")
        # The gateway is down: the card share's refund stays unanswered until held.
        await publish(producer, RefundRequested.new(oid, payload, idempotency_key=rid))
        case_id = await case_where(pool, "refund_held", "order_id", oid)
        sql = "SELECT status FROM gateway_refunds WHERE refund_id = $1"
        assert await pool.fetchval(sql, gid) == "held_for_review"
        sql_rf = "SELECT status FROM refunds WHERE refund_id = $1"
        assert await pool.fetchval(sql_rf, rid) == "pending"
        with pytest.raises(ReviewRefused, match="still waits in card_refunds_payable"):
            await resolve(pool, producer, case_id, "explain", "refunded by hand", "kim")

        async with gateway(settings, {}):
            done = await resolve(pool, producer, case_id, "refund", "the gateway is back", "kim")
            assert done.detail["refund_id"] == gid
            await value_is(pool, sql_rf, rid, "completed", f"refund {rid} completed")
        again = await resolve(pool, producer, case_id, "refund", "the gateway is back", "kim")
        assert (again.outcome, again.repeated) == ("applied", True)
        with pytest.raises(ReviewRefused, match="resolved already by kim"):
            await resolve(pool, producer, case_id, "explain", "no", "eve")
    card = await pool.fetchval("SELECT card_outcome FROM refunds WHERE refund_id = $1", rid)
    assert card == "succeeded"
    await assert_audit_clean(pool)


async def test_a_success_after_a_cancel_is_flagged_and_its_charge_refunded(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    buyer = uid("buyer-rx-cac")
    await fund_wallet(pool, buyer, 500, f"review-exits:{buyer}")
    order = order_submitted(uid("ord-rx-cac"), buyer, {"sku-tee": 1})
    oid = order.correlation_id
    env: dict[str, str] = {}
    # The gateway charges, but its callback waits unhandled while a cancel is decided (and
    # waits for settlement too, ahead of the success on the order's partition).
    async with pipeline(
        services, pool, producer, env, without=("callback_handling", "settlement"), sweeping=False
    ):
        await publish(producer, order)
        await reaches(pool, oid, "payment_requested")
        async with pool.acquire() as conn:
            p = await decision_payload(conn, oid, "gateway_declined", "cancelled first")
        await publish(producer, PaymentFailed.new(oid, p, idempotency_key=uid("cancel")))
    # The callback decides the payment succeeded (the order is not cancelled yet).
    async with pipeline(services, pool, producer, env, without=("settlement",), sweeping=False):
        await value_is(pool, "SELECT status FROM payment_requests WHERE order_id = $1", oid,
                       "succeeded", "the payment decided by its callback")  # fmt: skip
    # Settlement cancels the order first, then the success loses the race.
    async with pipeline(services, pool, producer, env):
        case_id = await case_where(pool, "confirm_after_cancel", "order_id", oid)
        ref = (await payment(pool, oid))["gateway_ref"]
        assert ref is not None
        with pytest.raises(ReviewRefused, match="fail does not fit a confirm_after_cancel"):
            await resolve(pool, producer, case_id, "fail", "no", "lee")
        done = await resolve(pool, producer, case_id, "refund", "cancelled, then paid", "lee")
        assert done.detail["steps"] == ["open_charge_refund"]
        sql = "SELECT status FROM gateway_refunds WHERE refund_id = $1"
        await value_is(pool, sql, done.detail["refund_id"], "succeeded", "the charge refunded")
        again = await resolve(pool, producer, case_id, "refund", "cancelled, then paid", "lee")
        assert (again.outcome, again.repeated) == ("applied", True)
    await reaches(pool, oid, "cancelled")
    await assert_audit_clean(pool)
