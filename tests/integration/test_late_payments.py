"""Money the buyer paid that we did not sell for, through the real decision path
(`decision.apply` in a real Postgres transaction, events published on real Kafka): a success
after the order was cancelled and a second charge open a late refund (or one held for
review), post the money into `late_payments_payable`, and tell operators; refund answers
settle it; the audit stays clean and catches a charge kept without a refund."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts.codec import ContractError, decode
from contracts.envelope import Envelope
from contracts.events.gateway import GatewayCallbackReceived, GatewayCallbackReceivedPayload
from contracts.events.payments import PaymentLateMoney, PaymentSucceeded
from contracts.money import Money
from contracts.topics import ORDERS_OUTCOMES
from infra.settings import Settings
from tests.support.gateway_edge import gateway, plant_payment
from tests.support.pipeline import eventually
from tests.support.services import scratch_database
from workers.callback_handling import decision
from workers.callback_handling.outcomes import Decision
from workers.gateway.port import ChargeRequest, Notice
from workers.gateway.registry import Gateways
from workers.late_payments.refund_job import run_due
from workers.ops.audit import run_audit
from workers.runtime import outbox
from workers.runtime.errors import PermanentError
from workers.runtime.publisher import publish

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module")
async def pool(services: Settings) -> AsyncIterator[asyncpg.Pool]:
    """This module plants audit violations on purpose: it gets a database of its own."""
    async with scratch_database(services, "late") as p:
        yield p


PAYABLE = "platform:payflow:late_payments_payable:EUR"
EUR500 = Money(amount=500, currency="EUR")


async def _payment(
    pool: asyncpg.Pool,
    order_state: str,
    status: str,
    payment_id: str | None = None,
    gateway_ref: str | None = None,
) -> tuple[str, str]:
    uid = uuid.uuid4().hex[:8]
    order_id, txn_id = f"ord-late-{uid}", f"txn-late-{uid}"
    payment_id = payment_id or f"pay-late-{uid}"
    async with pool.acquire() as conn, conn.transaction():
        await plant_payment(
            conn,
            order_id=order_id,
            transaction_id=txn_id,
            payment_id=payment_id,
            order_state=order_state,
            status=status,
            buyer="buyer-late",
            gateway_ref=gateway_ref,
        )
    return order_id, payment_id


def _cause(payment_id: str) -> GatewayCallbackReceived:
    return GatewayCallbackReceived.new(
        payment_id,
        GatewayCallbackReceivedPayload(
            provider="direct",
            raw_body="{}",
            key_id="k1",
            timestamp=0,
            signature="test",
            received_at=datetime.now(UTC),
        ),
        idempotency_key=f"direct:{uuid.uuid4().hex}",
    )


def _paid(payment_id: str, ref: str, status: str = "succeeded") -> Notice:
    return Notice(
        callback_id=f"cb-{uuid.uuid4().hex[:8]}",
        kind="payment",
        payment_id=payment_id,
        gateway_ref=ref,
        status=status,  # type: ignore[arg-type]
        amount=EUR500,
        failure_reason=None if status == "succeeded" else "card_declined",
    )


def _refunded(refund_id: str, status: str, payment_id: str = "pay-x") -> Notice:
    return Notice(
        callback_id=f"rcb-{uuid.uuid4().hex[:8]}",
        kind="refund",
        payment_id=payment_id,
        gateway_ref="gw",
        status=status,  # type: ignore[arg-type]
        amount=EUR500,
        failure_reason=None if status == "succeeded" else "account_closed",
        refund_id=refund_id,
        refund_ref=f"rf-{refund_id}",
    )


async def _apply(
    pool: asyncpg.Pool, cause: Envelope | None, notice: Notice, action: str = "refund"
) -> Decision:
    async with pool.acquire() as conn, conn.transaction():
        return await decision.apply(conn, cause, notice, late_action=action)


async def _refund(pool: asyncpg.Pool, ref: str) -> asyncpg.Record:
    row = await pool.fetchrow(
        "SELECT refund_id, status, reason, amount, kind FROM gateway_refunds "
        "WHERE gateway_ref = $1",
        ref,
    )
    assert row is not None
    return row


async def _balance(pool: asyncpg.Pool, account_id: str) -> int:
    return int(
        await pool.fetchval(
            "SELECT coalesce(sum(total), 0) FROM accounts WHERE account_id = $1", account_id
        )
    )


async def _published_back(
    settings: Settings, producer: AIOKafkaProducer, pool: asyncpg.Pool, events: list[Envelope]
) -> list[Envelope]:
    """Store and publish as the runtime does, then read them back from the real topic."""
    async with pool.acquire() as conn, conn.transaction():
        messages = await outbox.store(conn, "test_late_payments", None, events)
    await publish(producer, pool, messages)
    consumer = AIOKafkaConsumer(
        ORDERS_OUTCOMES.name,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"test-late-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    wanted = {e.event_id for e in events}
    found: list[Envelope] = []
    try:
        for _ in range(100):
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for rec in records:
                    try:
                        event = decode(ORDERS_OUTCOMES.name, rec.value)
                    except ContractError:  # other tests' hostile messages share the topic
                        continue
                    if event.event_id in wanted:
                        found.append(event)
            if len(found) == len(wanted):
                return found
    finally:
        await consumer.stop()
    raise AssertionError("late-money events did not come back from the topic")


async def test_success_after_the_order_was_cancelled_is_refunded_and_posted(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    order_id, payment_id = await _payment(pool, "cancelled", "failed")
    payable_before = await _balance(pool, PAYABLE)
    notice = _paid(payment_id, f"gw-{payment_id}")
    decided = await _apply(pool, _cause(payment_id), notice)

    assert decided.verdict == "late_success"
    refund = await _refund(pool, notice.gateway_ref)
    assert (refund["refund_id"], refund["status"], refund["reason"], refund["amount"]) == (
        f"late:{notice.gateway_ref}",
        "requested",
        "late_success",
        500,
    )
    assert await _balance(pool, PAYABLE) == payable_before + 500
    [event] = await _published_back(services, producer, pool, decided.events)
    assert isinstance(event, PaymentLateMoney)
    assert event.correlation_id == order_id
    assert (event.payload.reason, event.payload.action) == ("late_success", "refund_requested")

    # The same success again changes nothing; a failure after it moves no money.
    assert (await _apply(pool, _cause(payment_id), notice)).verdict == "duplicate"
    failed = _paid(payment_id, notice.gateway_ref, "failed")
    assert (await _apply(pool, None, failed)).events == []
    assert await _balance(pool, PAYABLE) == payable_before + 500


async def test_a_second_charge_is_refunded_and_the_first_is_kept(
    services: Settings, pool: asyncpg.Pool
) -> None:
    order_id, payment_id = await _payment(pool, "payment_requested", "pending")
    first = await _apply(pool, _cause(payment_id), _paid(payment_id, f"gw1-{payment_id}"))
    assert first.verdict == "applied"
    assert isinstance(first.events[0], PaymentSucceeded)

    # Learned by the sweeper's query (no cause): correlated with the order all the same.
    second = await _apply(pool, None, _paid(payment_id, f"gw2-{payment_id}"))
    assert second.verdict == "second_charge"
    assert second.events[0].correlation_id == order_id
    assert (await _refund(pool, f"gw2-{payment_id}"))["status"] == "requested"
    again = await _apply(pool, _cause(payment_id), _paid(payment_id, f"gw1-{payment_id}"))
    assert again.verdict == "duplicate"
    charges = await pool.fetch(
        "SELECT gateway_ref, source FROM gateway_charges WHERE payment_id = $1 ORDER BY 1",
        payment_id,
    )
    assert [(c["gateway_ref"], c["source"]) for c in charges] == [
        (f"gw1-{payment_id}", "callback"),
        (f"gw2-{payment_id}", "sync"),
    ]
    assert (
        await pool.fetchval("SELECT status FROM payment_requests WHERE payment_id = $1", payment_id)
        == "succeeded"
    )


async def test_the_charge_announced_first_is_kept_even_if_the_create_answer_named_the_other(
    services: Settings, pool: asyncpg.Pool
) -> None:
    """A double charge whose extra charge's callback comes first (seen in CI): the payment
    keeps the charge that decided it, so settlement, which sells only for the charge the
    payment holds, accepts the decision, and the charge the create answer named is the
    second one, refunded."""
    payment_id = f"pay-late-{uuid.uuid4().hex[:8]}"
    named, extra = f"gw1-{payment_id}", f"gw2-{payment_id}"
    # As gateway_request records the create answer.
    await _payment(pool, "payment_requested", "pending", payment_id, gateway_ref=named)
    first = await _apply(pool, _cause(payment_id), _paid(payment_id, extra))
    assert first.verdict == "applied"
    [sold] = first.events
    assert isinstance(sold, PaymentSucceeded) and sold.payload.gateway_ref == extra
    kept = await pool.fetchval(
        "SELECT gateway_ref FROM payment_requests WHERE payment_id = $1", payment_id
    )
    assert kept == extra
    second = await _apply(pool, _cause(payment_id), _paid(payment_id, named))
    assert second.verdict == "second_charge"
    assert (await _refund(pool, named))["reason"] == "second_charge"


async def test_review_mode_holds_the_money_and_sends_nothing(
    services: Settings, pool: asyncpg.Pool
) -> None:
    _, payment_id = await _payment(pool, "cancelled", "pending")
    decided = await _apply(pool, None, _paid(payment_id, f"gw-{payment_id}"), action="review")
    assert decided.verdict == "late_success"
    assert (await _refund(pool, f"gw-{payment_id}"))["status"] == "held_for_review"
    event = decided.events[0]
    assert isinstance(event, PaymentLateMoney) and event.payload.action == "held_for_review"


async def test_refund_answers_settle_the_late_refund(
    services: Settings, pool: asyncpg.Pool
) -> None:
    _, ok_payment = await _payment(pool, "cancelled", "failed")
    _, bad_payment = await _payment(pool, "cancelled", "failed")
    await _apply(pool, None, _paid(ok_payment, f"gw-{ok_payment}"))
    await _apply(pool, None, _paid(bad_payment, f"gw-{bad_payment}"))
    payable = await _balance(pool, PAYABLE)

    done = await _apply(pool, None, _refunded(f"late:gw-{ok_payment}", "succeeded"))
    assert done.verdict == "refund_applied"
    assert (await _refund(pool, f"gw-{ok_payment}"))["status"] == "succeeded"
    assert await _balance(pool, PAYABLE) == payable - 500
    again = await _apply(pool, None, _refunded(f"late:gw-{ok_payment}", "succeeded"))
    assert (again.verdict, again.events) == ("refund_duplicate", [])
    assert await _balance(pool, PAYABLE) == payable - 500

    refused = await _apply(pool, None, _refunded(f"late:gw-{bad_payment}", "failed"))
    assert refused.verdict == "refund_applied"
    assert (await _refund(pool, f"gw-{bad_payment}"))["status"] == "failed"
    event = refused.events[0]
    assert isinstance(event, PaymentLateMoney) and event.payload.action == "refund_failed"
    assert await _balance(pool, PAYABLE) == payable - 500

    # The gateway refunds it after all (an operator retried it there): the money went back.
    late = await _apply(pool, None, _refunded(f"late:gw-{bad_payment}", "succeeded"))
    assert late.verdict == "refund_applied"
    assert await _balance(pool, PAYABLE) == payable - 1000

    with pytest.raises(PermanentError) as unmatched:
        await _apply(pool, None, _refunded("late:gw-nobody", "succeeded"))
    assert unmatched.value.code == "unmatched_callback"


async def test_the_audit_is_clean_and_catches_a_charge_kept_without_a_refund(
    services: Settings, pool: asyncpg.Pool
) -> None:
    _, payment_id = await _payment(pool, "cancelled", "failed")
    await _apply(pool, None, _paid(payment_id, f"gw-{payment_id}"))
    async with pool.acquire() as conn:
        report = await run_audit(conn, services)
    assert report["ok"], report["violations"]
    assert report["checked"]["late_payments_posted"] >= 1

    # A failed refund leaves the charge kept: the audit says so.
    await pool.execute(
        "UPDATE gateway_refunds SET status = 'failed' WHERE gateway_ref = $1",
        f"gw-{payment_id}",
    )
    async with pool.acquire() as conn:
        report = await run_audit(conn, services)
    names = {v["check"] for v in report["violations"]}
    assert "no_order_charged_twice_without_refund" in names
    await pool.execute(
        "UPDATE gateway_refunds SET status = 'requested' WHERE gateway_ref = $1",
        f"gw-{payment_id}",
    )

    # A payment nobody resolved, long past the window and the sweeper's whole schedule.
    _, stuck = await _payment(pool, "payment_requested", "unknown")
    await pool.execute(
        "UPDATE payment_requests SET created_at = now() - interval '30 days' WHERE payment_id = $1",
        stuck,
    )
    async with pool.acquire() as conn:
        report = await run_audit(conn, services)
    stuck_rows = [v["row"] for v in report["violations"] if v["check"] == "payments_never_stuck"]
    assert [r["payment_id"] for r in stuck_rows] == [stuck]
    await pool.execute("UPDATE payment_requests SET status = 'failed' WHERE payment_id = $1", stuck)


async def _charged_at_the_gateway(gateways: Gateways, payment_id: str) -> str:
    """A real charge at the simulator, succeeded; its gateway_ref."""
    adapter = gateways.adapter("direct")
    created = await adapter.create_payment(
        ChargeRequest(payment_id, f"ord-{payment_id}", EUR500, f"payflow:{payment_id}")
    )

    async def succeeded() -> bool:
        return [c.status for c in await adapter.query_payment(payment_id)] == ["succeeded"]

    await eventually(succeeded, 30, f"{payment_id} charged at the gateway")
    return created.gateway_ref


async def _refund_job_until(
    pool: asyncpg.Pool, gateways: Gateways, settings: Settings, ref: str, status: str
) -> None:
    async def reached() -> bool:
        await run_due(pool, gateways, settings)
        return bool((await _refund(pool, ref))["status"] == status)

    await eventually(reached, 40, f"late refund of {ref} {status}")


@pytest.mark.parametrize(("faults", "final"), [("", "succeeded"), ("refund_failure=1", "failed")])
async def test_the_refund_job_returns_late_money_through_the_simulator(
    services: Settings, pool: asyncpg.Pool, faults: str, final: str
) -> None:
    """Against the real simulator over HTTP: the late refund is sent (pending), asked about
    after the grace, and decided like a refund callback (succeeded, or failed for review)."""
    settings = services.model_copy(update={"callback_grace_s": 0.0})
    env = {"PAYFLOW_SIM_FAULTS": faults} if faults else {}
    async with gateway(services, env) as gateways:
        payment_id = f"pay-lj-{uuid.uuid4().hex[:8]}"
        ref = await _charged_at_the_gateway(gateways, payment_id)
        await _payment(pool, "cancelled", "failed", payment_id)
        await _apply(pool, None, _paid(payment_id, ref))
        payable = await _balance(pool, PAYABLE)

        await _refund_job_until(pool, gateways, settings, ref, final)

        row = await pool.fetchrow(
            "SELECT attempts, refund_ref, evidence::text AS evidence FROM gateway_refunds "
            "WHERE gateway_ref = $1",
            ref,
        )
        assert row["attempts"] == 1  # sent once; then only asked
        returned = 500 if final == "succeeded" else 0
        assert await _balance(pool, PAYABLE) == payable - returned
        found = await gateways.adapter("direct").query_refund(f"late:{ref}")
        assert found is not None and found.status == final
        # Running again changes nothing: the refund is decided.
        assert await run_due(pool, gateways, settings) == 0
    async with pool.acquire() as conn:
        report = await run_audit(conn, services)
    kept = [v for v in report["violations"] if v["row"].get("gateway_ref") == ref]
    # A failed refund is money kept: the audit shows it until an operator acts.
    assert [v["check"] for v in kept] == (
        [] if final == "succeeded" else ["no_order_charged_twice_without_refund"]
    )
    if final == "failed":
        await pool.execute(
            "UPDATE gateway_refunds SET status = 'held_for_review' WHERE gateway_ref = $1", ref
        )
