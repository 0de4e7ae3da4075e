"""Callbacks published on the callback topic directly are verified like the webhook's: read
back from the real topic and run through the callback stage on a real Postgres and Redis,
a forged, stale, unknown-key or re-dated one is dead-lettered (forged_callback), and a
callback id decided before is recorded as 'replayed' and changes nothing."""

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from redis.asyncio import Redis

from contracts.codec import encode
from contracts.events.gateway import (
    GatewayCallbackBody,
    GatewayCallbackReceived,
    GatewayCallbackReceivedPayload,
)
from contracts.money import Money
from contracts.signing import sign
from contracts.topics import GATEWAY_CALLBACKS
from infra.settings import Settings
from workers.callback_handling.step import CallbackHandling
from workers.runtime.batch import BatchResult, run_batch

pytestmark = pytest.mark.integration

KEYS = {"k1": "callback-secret"}
OLD = 1_577_836_800  # 2020-01-01


def _callback(
    payment_id: str,
    callback_id: str,
    *,
    status: str = "failed",
    key_id: str = "k1",
    secret: str = "callback-secret",
    timestamp: int | None = None,
    received_at: float | None = None,
) -> GatewayCallbackReceived:
    body = GatewayCallbackBody(
        callback_id=callback_id,
        gateway_ref=f"gw-{payment_id}",
        payment_id=payment_id,
        status=status,
        amount=Money(amount=500, currency="EUR"),
        failure_reason="card_declined" if status == "failed" else None,
        occurred_at=datetime.now(UTC),
    ).model_dump_json()
    ts = int(time.time()) if timestamp is None else timestamp
    return GatewayCallbackReceived.new(
        payment_id,
        GatewayCallbackReceivedPayload(
            provider="direct",
            raw_body=body,
            key_id=key_id,
            timestamp=ts,
            signature=sign(secret, ts, body),
            received_at=datetime.fromtimestamp(received_at or time.time(), UTC),
        ),
        idempotency_key=f"direct:{callback_id}:{uuid.uuid4().hex[:6]}",
    )


async def _through_the_topic(
    settings: Settings, producer: AIOKafkaProducer, events: list[GatewayCallbackReceived]
) -> list[Any]:
    """Publish on the real callback topic and read the records back, as the stage would."""
    sent = [
        await producer.send_and_wait(
            GATEWAY_CALLBACKS.name, encode(e), key=e.correlation_id.encode()
        )
        for e in events
    ]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"test-callbacks-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        wanted = {(m.partition, m.offset) for m in sent}
        tps = {TopicPartition(m.topic, m.partition) for m in sent}
        consumer.assign(list(tps))
        for tp in tps:
            consumer.seek(tp, min(m.offset for m in sent if m.partition == tp.partition))
        found: dict[tuple[int, int], Any] = {}
        for _ in range(50):
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for rec in records:
                    if (rec.partition, rec.offset) in wanted:
                        found[(rec.partition, rec.offset)] = rec
            if len(found) == len(wanted):
                return [found[(m.partition, m.offset)] for m in sent]
    finally:
        await consumer.stop()
    raise AssertionError("published callbacks did not come back")


async def _run(
    settings: Settings,
    pool: asyncpg.Pool,
    redis: Redis,
    producer: AIOKafkaProducer,
    events: list[GatewayCallbackReceived],
) -> BatchResult:
    stage = CallbackHandling(redis, KEYS, tolerance_s=300)
    return await run_batch(pool, stage, await _through_the_topic(settings, producer, events), 1)


async def _dead(pool: asyncpg.Pool, payment_id: str) -> list[tuple[str, str]]:
    rows = await pool.fetch(
        "SELECT reason_code, detail FROM dead_letters WHERE order_id = $1 "
        "AND consumer = 'callback_handling' ORDER BY dead_letter_id",
        payment_id,
    )
    return [(r["reason_code"], r["detail"]) for r in rows]


@pytest.mark.parametrize(
    ("refusal", "extra"),
    [
        ("stale_timestamp", {"timestamp": OLD}),
        ("unknown_key_id", {"key_id": "k9"}),
        ("bad_signature", {"secret": "guessed"}),
        # A producer cannot re-date an old signature by claiming it was received later.
        ("future_received_at", {"timestamp": OLD + 10**9, "received_at": OLD + 10**9}),
    ],
)
async def test_a_forged_callback_is_dead_lettered(
    services: Settings,
    pool: asyncpg.Pool,
    redis: Redis,
    producer: AIOKafkaProducer,
    refusal: str,
    extra: dict[str, Any],
) -> None:
    payment_id = f"pay-forged-{uuid.uuid4().hex[:8]}"
    result = await _run(services, pool, redis, producer, [_callback(payment_id, "cb-1", **extra)])
    assert (result.processed, len(result.dead)) == (0, 1)
    [(reason, detail)] = await _dead(pool, payment_id)
    assert reason == "forged_callback" and refusal in detail
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM gateway_callbacks WHERE payment_id = $1", payment_id
        )
        == 0
    )


async def _pending_payment(pool: asyncpg.Pool, uid: str) -> str:
    """An order waiting for its gateway answer (total 0 beyond the charge: nothing to audit)."""
    order_id, txn_id, payment_id = f"ord-cbv-{uid}", f"txn-cbv-{uid}", f"pay-cbv-{uid}"
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """INSERT INTO orders (order_id, buyer_id, currency, payment_preference, subtotal,
                   discount, total, request_digest, state)
               VALUES ($1, 'buyer-cbv', 'EUR', 'gateway_only', 0, 0, 0, 'test',
                   'payment_requested')""",
            order_id,
        )
        await conn.execute(
            """INSERT INTO transactions (transaction_id, order_id, buyer_id, currency, total,
                   wallet_part, gateway_part, status)
               VALUES ($1, $2, 'buyer-cbv', 'EUR', 0, 0, 0, 'pending_payment')""",
            txn_id,
            order_id,
        )
        await conn.execute(
            """INSERT INTO payment_requests (payment_id, transaction_id, order_id, attempt,
                   idempotency_key, currency, amount, status, request_body)
               VALUES ($1, $2, $3, 1, $1, 'EUR', 500, 'pending', '{}')""",
            payment_id,
            txn_id,
            order_id,
        )
    return payment_id


async def test_a_replayed_callback_id_changes_nothing(
    services: Settings, pool: asyncpg.Pool, redis: Redis, producer: AIOKafkaProducer
) -> None:
    payment_id = await _pending_payment(pool, uuid.uuid4().hex[:8])
    first = _callback(payment_id, f"cb-{payment_id}", status="failed")
    result = await _run(services, pool, redis, producer, [first])
    assert result.processed == 1, [d.detail for d in result.dead]
    status, fence = await pool.fetchrow(
        "SELECT status, fence FROM payment_requests WHERE payment_id = $1", payment_id
    )
    assert (status, fence) == ("failed", 1)

    # The same callback id again, validly signed afresh, as a new event (a replay on the
    # topic, or the webhook's retry after a publish it could not confirm); and in the same
    # batch a copy that contradicts it.
    again = _callback(payment_id, f"cb-{payment_id}", status="failed")
    flipped = _callback(payment_id, f"cb-{payment_id}", status="succeeded")
    result = await _run(services, pool, redis, producer, [again, flipped])
    assert (result.processed, len(result.dead)) == (2, 0)
    assert [m for m in result.messages] == []  # no decision published
    rows = await pool.fetch(
        "SELECT event_id, verdict FROM gateway_callbacks WHERE payment_id = $1 "
        "ORDER BY recorded_at, verdict",
        payment_id,
    )
    verdicts = {r["event_id"]: r["verdict"] for r in rows}
    assert verdicts == {
        first.event_id: "applied",
        again.event_id: "replayed",
        flipped.event_id: "replayed",
    }
    assert tuple(
        await pool.fetchrow(
            "SELECT status, fence FROM payment_requests WHERE payment_id = $1", payment_id
        )
    ) == ("failed", 1)
    # Leave no open order behind for the audits of other tests in this session.
    await pool.execute(
        "UPDATE orders SET state = 'cancelled', state_reason = 'test' WHERE order_id = $1",
        f"ord-cbv-{payment_id.removeprefix('pay-cbv-')}",
    )
