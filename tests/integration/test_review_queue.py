"""The manual-review queue with its way out, end to end through the running pipeline (the
real simulator over HTTP, or none at all; the webhook, every money stage and the sweeper in
this process; real Kafka and Postgres): workers open a case where they give up, an operator
resolves it (`payflow review resolve`, or `workers.review.actions.resolve` that it runs)
through the same events and TCC paths as the workers, the same command again answers with
its first outcome, a conflicting one is refused, and the audit is clean after each."""

import asyncio
import json
import os
import sys
from collections.abc import Iterator

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from contracts.events.orders import OrderSubmitted
from contracts.events.payments import PaymentFailed
from contracts.money import Money
from infra.settings import Settings, get_settings
from tests.support.gateway_edge import gateway_charges, payment, pipeline, reaches, uid
from tests.support.pipeline import (
    assert_audit_clean,
    balances,
    eventually,
    fund_wallet,
    order_submitted,
    publish,
    seed_catalogue,
)
from workers.callback_handling import decision
from workers.gateway.port import Notice
from workers.review.actions import ReviewRefused, resolve
from workers.runtime import outbox, publisher
from workers.sweeper.outcomes import decision_payload

pytestmark = pytest.mark.integration

WALLET_PART = 500  # of a 15.00 order: the other 10.00 is charged at the gateway


async def payflow(*args: str, **env: str) -> tuple[int, str, str]:
    """The CLI as an operator runs it (a process of its own; the pipeline keeps running)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "workers.cli.main", *args,
        env=os.environ | env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def case_of(pool: asyncpg.Pool, kind: str, order_id: str) -> int:
    async def opened() -> bool:
        return bool(await _case(pool, kind, order_id))

    await eventually(opened, 60, f"a {kind} case for {order_id}")
    return await _case(pool, kind, order_id)


async def _case(pool: asyncpg.Pool, kind: str, order_id: str) -> int:
    found: int | None = await pool.fetchval(
        "SELECT case_id FROM review_cases WHERE kind = $1 AND order_id = $2", kind, order_id
    )
    return found or 0


async def held(pool: asyncpg.Pool, order_id: str) -> list[str]:
    """The order's holds still held, of any participant."""
    rows = await pool.fetch(
        """SELECT 'funds' FROM fund_holds WHERE order_id = $1 AND state = 'held'
           UNION ALL SELECT 'stock' FROM stock_holds WHERE order_id = $1 AND state = 'held'
           UNION ALL SELECT 'coupon' FROM coupon_grants
                     WHERE order_id = $1 AND state = 'locked'""",
        order_id,
    )
    return [r[0] for r in rows]


async def actions_logged(pool: asyncpg.Pool, case_id: int) -> list[tuple[str, str, str]]:
    rows = await pool.fetch(
        "SELECT operator, action, outcome FROM operator_actions WHERE case_id = $1 "
        "ORDER BY action_id",
        case_id,
    )
    return [(r["operator"], r["action"], r["outcome"]) for r in rows]


async def _order(pool: asyncpg.Pool, prefix: str) -> tuple[str, str, OrderSubmitted]:
    buyer = uid(f"buyer-{prefix}")
    await fund_wallet(pool, buyer, WALLET_PART, f"review:{buyer}")
    order = order_submitted(uid(f"ord-{prefix}"), buyer, {"sku-tee": 1})
    return order.correlation_id, f"buyer:{buyer}:wallet:EUR", order


async def test_an_unresolved_payment_is_failed_or_confirmed_by_an_operator(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    failed_id, failed_wallet, failed = await _order(pool, "rv-fail")
    paid_id, paid_wallet, paid = await _order(pool, "rv-paid")
    # No gateway at all: every create and query goes unanswered, so after its last status
    # query each payment is unresolved and its order waits in review with its holds held.
    async with pipeline(services, pool, producer, None):
        await publish(producer, failed)
        await publish(producer, paid)
        fail_case = await case_of(pool, "payment_unresolved", failed_id)
        paid_case = await case_of(pool, "payment_unresolved", paid_id)
        await reaches(pool, failed_id, "manual_review")
        assert sorted(await held(pool, failed_id)) == ["funds", "stock"]

        # fail = Cancel: settlement releases every hold.
        why = "the gateway confirms it never charged"
        done = await resolve(pool, producer, fail_case, "fail", why, "alice")
        assert (done.outcome, done.repeated) == ("applied", False)
        await reaches(pool, failed_id, "cancelled")
        again = await resolve(pool, producer, fail_case, "fail", why, "alice")
        assert (again.outcome, again.repeated) == ("applied", True)
        with pytest.raises(ReviewRefused, match="resolved already by alice"):
            await resolve(pool, producer, fail_case, "succeed", "no", "eve", gateway_ref="gw-x")

        # succeed = Confirm, from the CLI: refused without the gateway's reference, then
        # applied with it (operator from the environment), then the same answer again.
        code, _, err = await payflow("review", "resolve", str(paid_case), "--action",
                                     "explain", "--reason", "x", PAYFLOW_OPERATOR="bob")  # fmt: skip
        assert code == 1
        assert "explain does not fit a payment_unresolved case; use succeed or fail" in err
        code, _, err = await payflow("review", "resolve", str(paid_case), "--action",
                                     "succeed", "--reason", "charge seen in the gateway console",
                                     PAYFLOW_OPERATOR="bob")  # fmt: skip
        assert code == 1 and "pass --gateway-ref" in err
        ref = uid("gw-console")
        confirm = ("review", "resolve", str(paid_case), "--action", "succeed", "--reason",
                   "charge seen in the gateway console", "--gateway-ref", ref)  # fmt: skip
        code, out, err = await payflow(*confirm, PAYFLOW_OPERATOR="bob")
        assert code == 0, err
        assert json.loads(out)["outcome"] == "applied"
        await reaches(pool, paid_id, "settled")
        code, out, err = await payflow(*confirm, "--operator", "bob")
        assert code == 0 and "its first outcome" in err

        code, out, _ = await payflow("review", "show", str(paid_case), "--json")
        shown = json.loads(out)
        assert (shown["state"], shown["resolution"], shown["resolved_by"]) == (
            "resolved", "succeed", "bob",
        )  # fmt: skip
        assert shown["now"]["order_state"] == "settled"
        code, out, _ = await payflow("review", "list", "--state", "resolved", "--kind",
                                     "payment_unresolved", "--json")  # fmt: skip
        assert {paid_case, fail_case} <= {c["case_id"] for c in json.loads(out)}
        code, out, _ = await payflow("review", "list", "--state", "all")
        assert f"#{paid_case} [resolved] payment_unresolved payment:" in out
        assert out.endswith(" case(s)\n")

    assert (await payment(pool, failed_id))["status"] == "failed"
    assert await balances(pool, failed_wallet) == (WALLET_PART, WALLET_PART, 0)
    assert await held(pool, failed_id) == []
    assert (await payment(pool, paid_id))["status"] == "succeeded"
    assert await balances(pool, paid_wallet) == (0, 0, 0)
    assert await held(pool, paid_id) == []
    assert await actions_logged(pool, fail_case) == [
        ("alice", "fail", "applied"),
        ("eve", "succeed", "refused"),
    ]
    assert [a[2] for a in await actions_logged(pool, paid_case)] == [
        "refused", "refused", "applied",
    ]  # fmt: skip
    await assert_audit_clean(pool)


@pytest.fixture
def review_late_money(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """PAYFLOW_LATE_PAYMENT_ACTION=review for this test's decisions (read at decision time)."""
    monkeypatch.setenv("PAYFLOW_LATE_PAYMENT_ACTION", "review")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


async def test_a_double_charge_held_for_review_is_refunded_by_an_operator(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer, review_late_money: None
) -> None:
    await seed_catalogue(pool)
    order_id, _, order = await _order(pool, "rv-double")
    env = {"PAYFLOW_SIM_FAULTS": "double_charge=1"}
    async with pipeline(services, pool, producer, env):
        await publish(producer, order)
        await reaches(pool, order_id, "settled")
        case_id = await case_of(pool, "late_money_held", order_id)
        refund_id = await pool.fetchval(
            "SELECT evidence->>'refund_id' FROM review_cases WHERE case_id = $1", case_id
        )
        assert await pool.fetchval(
            "SELECT status FROM gateway_refunds WHERE refund_id = $1", refund_id
        ) == "held_for_review"  # fmt: skip
        with pytest.raises(ReviewRefused, match="succeed does not fit a late_money_held"):
            await resolve(pool, producer, case_id, "succeed", "no", "carol", gateway_ref="g")

        why = "a second charge of a paid order"
        done = await resolve(pool, producer, case_id, "refund", why, "carol")
        assert done.detail["refund_id"] == refund_id

        async def refunded() -> bool:
            status = await pool.fetchval(
                "SELECT status FROM gateway_refunds WHERE refund_id = $1", refund_id
            )
            return bool(status == "succeeded")

        await eventually(refunded, 60, "the held refund sent again and refunded")
        again = await resolve(pool, producer, case_id, "refund", why, "carol")
        assert (again.outcome, again.repeated) == ("applied", True)
        with pytest.raises(ReviewRefused, match="resolved already by carol"):
            await resolve(pool, producer, case_id, "explain", "no", "eve")
    assert await actions_logged(pool, case_id) == [
        ("carol", "succeed", "refused"),
        ("carol", "refund", "applied"),
        ("eve", "explain", "refused"),
    ]
    await assert_audit_clean(pool)


async def test_an_expired_hold_releases_every_hold_and_the_charge_is_refunded(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    order_id, wallet, order = await _order(pool, "rv-expired")
    env: dict[str, str] = {}
    async with pipeline(services, pool, producer, env, without=("settlement",)):
        await publish(producer, order)
        await reaches(pool, order_id, "paid")
        # The wallet hold's deadline passed before settlement could confirm it.
        await pool.execute(
            "UPDATE fund_holds SET expires_at = now() - interval '1 second' WHERE order_id = $1",
            order_id,
        )
    async with pipeline(services, pool, producer, env):
        case_id = await case_of(pool, "hold_expired", order_id)
        await reaches(pool, order_id, "manual_review")
        assert await held(pool, order_id) == []  # released with the verdict, not left held
        assert await balances(pool, wallet) == (WALLET_PART, WALLET_PART, 0)
        with pytest.raises(ReviewRefused, match="succeed does not fit a hold_expired case"):
            await resolve(pool, producer, case_id, "succeed", "no", "dave", gateway_ref="g")

        done = await resolve(pool, producer, case_id, "refund", "cannot sell it", "dave")
        assert done.detail["steps"] == ["open_charge_refund", "publish_cancel"]
        await reaches(pool, order_id, "cancelled")

        async def refunded() -> bool:
            status = await pool.fetchval(
                "SELECT status FROM gateway_refunds WHERE refund_id = $1",
                done.detail["refund_id"],
            )
            return bool(status == "succeeded")

        await eventually(refunded, 60, "the charge refunded through the gateway")
    await assert_audit_clean(pool)


async def test_an_amount_mismatch_is_refunded_and_the_order_cancelled(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    order_id, wallet, order = await _order(pool, "rv-mismatch")
    env: dict[str, str] = {}
    # Callbacks wait unhandled: the gateway's own record, as a status query would bring it,
    # is the first word on this payment, and it names another amount than we asked.
    async with pipeline(
        services, pool, producer, env, without=("callback_handling",), sweeping=False
    ) as settings:
        await publish(producer, order)
        await reaches(pool, order_id, "payment_requested")
        pay = await payment(pool, order_id)
        (ref,) = await _charged(settings, pay["payment_id"])
        record = Notice(
            callback_id=f"sync:{ref}",
            kind="payment",
            payment_id=pay["payment_id"],
            gateway_ref=ref,
            status="succeeded",
            amount=Money(amount=pay["amount"] - 100, currency="EUR"),
            failure_reason=None,
        )
        async with pool.acquire() as conn, conn.transaction():
            decided = await decision.apply(conn, None, record)
            messages = await outbox.store(conn, "test_review", None, decided.events)
        await publisher.publish(producer, pool, messages)
        await reaches(pool, order_id, "manual_review")
        case_id = await case_of(pool, "amount_mismatch", order_id)
        with pytest.raises(ReviewRefused, match="order holds are still held: refund first"):
            await resolve(pool, producer, case_id, "explain", "looks fine", "erin")
    async with pipeline(services, pool, producer, env):
        done = await resolve(pool, producer, case_id, "refund", "charged 1.00 short", "erin")
        await reaches(pool, order_id, "cancelled")

        async def refunded() -> bool:
            status = await pool.fetchval(
                "SELECT status FROM gateway_refunds WHERE refund_id = $1",
                done.detail["refund_id"],
            )
            return bool(status == "succeeded")

        await eventually(refunded, 60, "what the gateway charged refunded")
    assert await held(pool, order_id) == []
    assert await balances(pool, wallet) == (WALLET_PART, WALLET_PART, 0)
    await assert_audit_clean(pool)


async def _charged(settings: Settings, payment_id: str) -> list[str]:
    async def made() -> bool:
        return bool(await gateway_charges(settings, payment_id))

    await eventually(made, 30, "the gateway's charge")
    return await gateway_charges(settings, payment_id)


async def test_a_failure_that_lost_the_race_to_settlement_is_flagged_and_refunded(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    order_id, wallet, order = await _order(pool, "rv-race")
    env: dict[str, str] = {}
    async with pipeline(services, pool, producer, env, without=("settlement",)):
        await publish(producer, order)
        await reaches(pool, order_id, "paid")
        # A Cancel decided after the Confirm (same partition, behind it): it loses the race.
        async with pool.acquire() as conn:
            p = await decision_payload(conn, order_id, "gateway_declined", "a late failure")
        await publish(producer, PaymentFailed.new(order_id, p, idempotency_key=uid("late")))
    async with pipeline(services, pool, producer, env):
        case_id = await case_of(pool, "cancel_after_confirm", order_id)
        await reaches(pool, order_id, "settled")  # the database still says settled
        evidence = await pool.fetchval(
            "SELECT evidence FROM review_cases WHERE case_id = $1", case_id
        )
        assert json.loads(evidence)["race_loser"] is True
        done = await resolve(pool, producer, case_id, "refund", "buyer disputes it", "frank")
        assert done.detail["steps"] == ["publish_order_refund"]

        async def refunded() -> bool:
            status = await pool.fetchval(
                "SELECT status FROM refunds WHERE refund_id = $1", done.detail["refund_id"]
            )
            return bool(status == "completed")

        await eventually(refunded, 60, "the settled order refunded as a whole")
    assert (await balances(pool, wallet))[0] == WALLET_PART  # the wallet share came back
    await assert_audit_clean(pool)
