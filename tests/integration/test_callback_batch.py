"""Callback handling decides a batch's usual answers at once (workers/callback_handling/
decide_batch.py): one query per table to read, one statement per table to write. On the
real Postgres and Redis: the usual answers are decided as one by one would decide them,
the rest of the batch (a disputed amount, a second callback for one payment) still goes one
by one, and the same callbacks again are replays that change nothing."""

import time
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from redis.asyncio import Redis

from contracts.events.gateway import (
    GatewayCallbackBody,
    GatewayCallbackReceived,
    GatewayCallbackReceivedPayload,
)
from contracts.events.payments import PaymentFailed, PaymentSucceeded
from contracts.money import Money
from contracts.signing import sign
from infra.settings import Settings
from tests.support.gateway_edge import plant_payment
from tests.support.pipeline import consumed, order_state, published
from workers.callback_handling import decide_batch
from workers.callback_handling.step import CallbackHandling
from workers.runtime.batch import run_batch
from workers.runtime.stage import batch_scope

pytestmark = pytest.mark.integration

KEYS = {"k1": "callback-secret"}


def _callback(payment_id: str, status: str, amount: int = 500) -> GatewayCallbackReceived:
    body = GatewayCallbackBody(
        callback_id=f"cb-{payment_id}-{status}",
        gateway_ref=f"gw-{payment_id}",
        payment_id=payment_id,
        status=status,
        amount=Money(amount=amount, currency="EUR"),
        failure_reason="card_declined" if status == "failed" else None,
        occurred_at=datetime.now(UTC),
    ).model_dump_json()
    ts = int(time.time())
    return GatewayCallbackReceived.new(
        payment_id,
        GatewayCallbackReceivedPayload(
            provider="direct",
            raw_body=body,
            key_id="k1",
            timestamp=ts,
            signature=sign(KEYS["k1"], ts, body),
            received_at=datetime.now(UTC),
        ),
        idempotency_key=f"direct:{uuid.uuid4().hex}",
    )


async def _payments(pool: asyncpg.Pool, n: int) -> list[str]:
    """`n` orders of 5.00 EUR awaiting their gateway payment; their order ids."""
    run = uuid.uuid4().hex[:8]
    orders = [f"cbb-{run}-{i}" for i in range(n)]
    async with pool.acquire() as conn:
        for o in orders:
            await plant_payment(
                conn,
                order_id=o,
                transaction_id=f"txn-{o}",
                payment_id=f"pay-{o}",
                order_state="payment_requested",
                status="pending",
                buyer=f"buyer-{run}",
            )
    return orders


async def _payment(pool: asyncpg.Pool, order_id: str) -> tuple[str, str | None]:
    row = await pool.fetchrow(
        "SELECT status, gateway_ref FROM payment_requests WHERE order_id = $1", order_id
    )
    return row["status"], row["gateway_ref"]


async def test_usual_answers_are_decided_at_once_and_the_rest_one_by_one(
    services: Settings, pool: asyncpg.Pool
) -> None:
    orders = await _payments(pool, 5)
    paid, declined, disputed, twice = orders[0:2], orders[2], orders[3], orders[4]
    batch = [
        *(_callback(f"pay-{o}", "succeeded") for o in paid),
        _callback(f"pay-{declined}", "failed"),
        _callback(f"pay-{disputed}", "succeeded", amount=499),  # not what we asked
        _callback(f"pay-{twice}", "succeeded"),
        _callback(f"pay-{twice}", "succeeded"),  # the gateway's retry, another event id
    ]
    redis = Redis.from_url(services.redis_url)
    stage = CallbackHandling(redis, KEYS, tolerance_s=300)
    try:
        # The usual three are decided at once, before the batch's events one by one.
        async with batch_scope(), pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            verifier = decide_batch.Verifier(KEYS, 300, time.time())
            await decide_batch.decide_batch(conn, redis, verifier, batch)
            at_once = [e for e in batch if decide_batch.decided(e) is not None]
            await tx.rollback()
        assert [e.correlation_id for e in at_once] == [f"pay-{o}" for o in (*paid, declined)]

        done = await run_batch(pool, stage, [consumed(e, i) for i, e in enumerate(batch)], 1)
        assert (done.processed, len(done.dead)) == (6, 0)
        out = published(done.messages)
        succeeded = sorted(e.correlation_id for e in out if isinstance(e, PaymentSucceeded))
        assert succeeded == sorted([*paid, twice])
        assert [e.correlation_id for e in out if isinstance(e, PaymentFailed)] == [declined]
        for o in (*paid, twice):
            assert await _payment(pool, o) == ("succeeded", f"gw-pay-{o}")
            assert await order_state(pool, o) == "paid"
        assert await _payment(pool, declined) == ("failed", f"gw-pay-{declined}")
        assert await _payment(pool, disputed) == ("unknown", None)  # the sweeper asks
        verdicts = await pool.fetch(
            """SELECT payment_id, verdict FROM gateway_callbacks
                WHERE payment_id = ANY($1::text[]) ORDER BY payment_id, verdict""",
            [f"pay-{o}" for o in orders],
        )
        assert [(r["payment_id"], r["verdict"]) for r in verdicts] == sorted(
            [(f"pay-{o}", "applied") for o in (*paid, declined)]
            + [(f"pay-{disputed}", "mismatch")]
            + [(f"pay-{twice}", "applied"), (f"pay-{twice}", "replayed")]
        )
        charges = await pool.fetchval(
            "SELECT count(*) FROM gateway_charges WHERE payment_id = ANY($1::text[])",
            [f"pay-{o}" for o in orders],
        )
        assert charges == 4  # a disputed amount records no charge: the gateway is asked

        # The same callbacks delivered again (new event ids): replays, nothing decided.
        again = [e.model_copy(update={"event_id": uuid.uuid4()}) for e in batch]
        done = await run_batch(pool, stage, [consumed(e, i) for i, e in enumerate(again)], 1)
        assert (done.processed, len(done.dead), published(done.messages)) == (6, 0, [])
        for o in paid:
            assert await _payment(pool, o) == ("succeeded", f"gw-pay-{o}")
    finally:
        await redis.aclose()
