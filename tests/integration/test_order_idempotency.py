"""Upstream idempotency of order.submitted, against the real Kafka and Postgres: real
events through the order_build stage, outcomes read from what it published."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from contracts.codec import ContractError, decode, encode
from contracts.envelope import Envelope
from contracts.events.orders import OrderLine, OrderSubmitted, OrderSubmittedPayload
from contracts.events.outcomes import OrderDuplicate, OrderSubmissionRefused
from contracts.topics import ORDERS_OUTCOMES, ORDERS_SUBMITTED, namespace
from infra.settings import Settings
from tests.support.pipeline import (
    assert_audit_clean,
    eventually,
    fund_wallet,
    order_state,
    publish,
    seed_catalogue,
    simulator,
    start_workers,
)
from workers.order_build import store
from workers.order_build.step import OrderBuild
from workers.runtime.consumer import StageRunner
from workers.runtime.health import Health

pytestmark = pytest.mark.integration
TEE = {"sku-tee": 2}


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _order(
    order_id: str, key: str, cart: dict[str, int] = TEE, buyer: str = "buyer-idem"
) -> OrderSubmitted:
    payload = OrderSubmittedPayload(
        order_id=order_id,
        buyer_id=buyer,
        currency="EUR",
        items=[OrderLine(sku_id=sku, quantity=q) for sku, q in cart.items()],
    )
    return OrderSubmitted.new(order_id, payload, idempotency_key=key)


def _again(event: OrderSubmitted) -> OrderSubmitted:
    """The same submission re-sent by the shop as a new message (a new event id)."""
    return event.model_copy(update={"event_id": uuid.uuid4()})


@asynccontextmanager
async def _order_build(
    settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer, replicas: int = 1
) -> AsyncIterator[list[OrderBuild]]:
    stop = asyncio.Event()
    stages = [OrderBuild() for _ in range(replicas)]
    tasks = [
        asyncio.create_task(
            StageRunner(s, settings, pool, producer, Health("order_build")).run(stop)
        )
        for s in stages
    ]
    try:
        yield stages
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def _run(
    settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer, *events: Envelope
) -> None:
    """Publish the events one by one, each processed before the next is sent (across
    partitions Kafka promises no order, and these tests are about which one came first)."""
    async with _order_build(settings, pool, producer):
        for event in events:
            await publish(producer, event)
            await eventually(partial(_processed, pool, event), 60, f"{event.event_id} done")


async def _processed(pool: asyncpg.Pool, *events: Envelope) -> bool:
    n = await pool.fetchval(
        "SELECT count(*) FROM inbox WHERE consumer = 'order_build' AND event_id = ANY($1)",
        [e.event_id for e in events],
    )
    return bool(n == len(events))


async def _outcomes(pool: asyncpg.Pool, order_id: str) -> list[Envelope]:
    """What order build published on orders.outcomes for this order id, in order."""
    rows = await pool.fetch(
        """SELECT message_value FROM outbox WHERE topic = $1 AND message_key = $2
           ORDER BY outbox_id""",
        ORDERS_OUTCOMES.name,
        order_id,
    )
    return [decode(ORDERS_OUTCOMES.name, bytes(r[0])) for r in rows]


async def _count(pool: asyncpg.Pool, sql: str, *args: Any) -> int:
    return int(await pool.fetchval(sql, *args))


async def _rows(pool: asyncpg.Pool, table: str, column: str, *values: object) -> int:
    """How many rows of `table` have `column` in `values`."""
    return await _count(pool, f"SELECT count(*) FROM {table} WHERE {column} = ANY($1)", values)


async def _held(pool: asyncpg.Pool, order_id: str) -> int:
    return await _count(
        pool, "SELECT coalesce(sum(quantity), 0) FROM stock_holds WHERE order_id = $1", order_id
    )


async def _key_owner(pool: asyncpg.Pool, key: str) -> str | None:
    owner: str | None = await pool.fetchval(
        "SELECT order_id FROM order_idempotency_keys WHERE idempotency_key = $1", key
    )
    return owner


async def _conflicts(pool: asyncpg.Pool, order_id: str) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            "SELECT * FROM order_submission_conflicts WHERE order_id = $1 ORDER BY conflict_id",
            order_id,
        )
    )


async def test_same_key_same_cart_new_order_id_is_answered_with_the_first_order(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    key = _uid("shop-1:cart")
    first, retry = _order(_uid("idem-a"), key), _order(_uid("idem-b"), key)
    await _run(services, pool, producer, first, retry)

    assert await order_state(pool, first.correlation_id) == "built"
    assert await order_state(pool, retry.correlation_id) is None  # never built nor rejected
    assert await _held(pool, first.correlation_id) == 2
    assert await _held(pool, retry.correlation_id) == 0  # no second stock hold
    assert await _rows(pool, "tcc_barrier", "gid", retry.correlation_id) == 0
    [answer] = await _outcomes(pool, retry.correlation_id)
    assert isinstance(answer, OrderDuplicate)
    assert answer.payload.original_order_id == first.correlation_id
    assert answer.payload.idempotency_key == key
    assert answer.causation_id == retry.event_id
    assert await _conflicts(pool, retry.correlation_id) == []
    # The shop consumes it from the outcomes topic, keyed by its (new) order id.
    assert await _published(services, answer.event_id) == retry.correlation_id.encode()

    # The retry re-sent once more: it is already answered, nothing new happens.
    resent = _again(retry)
    await _run(services, pool, producer, resent)
    assert len(await _outcomes(pool, retry.correlation_id)) == 1
    assert await _rows(pool, "orders", "order_id", first.correlation_id, retry.correlation_id) == 1


async def _published(settings: Settings, event_id: uuid.UUID) -> bytes:
    """The Kafka key of the outcome with this event id, read from the topic itself."""
    consumer = AIOKafkaConsumer(
        ORDERS_OUTCOMES.name,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=_uid("test-outcomes"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        async with asyncio.timeout(60):
            while True:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    for r in records:
                        try:  # other tests may have put anything on the topic
                            found = decode(ORDERS_OUTCOMES.name, r.value)
                        except ContractError:
                            continue
                        if found.event_id == event_id:
                            return bytes(r.key)
    finally:
        await consumer.stop()


async def test_same_key_other_cart_is_refused_and_recorded_the_first_order_untouched(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    key = _uid("shop-1:cart")
    first = _order(_uid("idem-a"), key)
    other = _order(_uid("idem-b"), key, {"sku-cap": 1})
    await _run(services, pool, producer, first, other)

    [answer] = await _outcomes(pool, other.correlation_id)
    assert isinstance(answer, OrderSubmissionRefused)
    assert answer.payload.reason_code == "idempotency_key_conflict"
    assert answer.payload.order_id == other.correlation_id
    assert answer.payload.original_order_id == first.correlation_id
    assert answer.payload.idempotency_key == key
    assert answer.payload.refused_event_id == answer.causation_id == other.event_id
    assert first.correlation_id in answer.payload.detail
    assert await _published(services, answer.event_id) == other.correlation_id.encode()
    assert await order_state(pool, other.correlation_id) is None
    assert await _held(pool, other.correlation_id) == 0
    assert await order_state(pool, first.correlation_id) == "built"
    assert await _held(pool, first.correlation_id) == 2
    assert await _outcomes(pool, first.correlation_id) == []
    [row] = await _conflicts(pool, other.correlation_id)
    assert row["reason_code"] == "idempotency_key_conflict"
    assert row["idempotency_key"] == key
    assert (row["existing_order_id"], row["existing_event_id"]) == (
        first.correlation_id,
        first.event_id,
    )
    assert row["event_id"] == other.event_id
    assert row["request_digest"] != row["existing_digest"]
    assert await _key_owner(pool, key) == first.correlation_id  # the key stays the first's


async def test_an_order_id_reused_with_other_content_is_refused_not_dead_lettered(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    order_id = _uid("idem-r")
    first = _order(order_id, _uid("shop-1:cart"))
    reused = _order(order_id, _uid("shop-1:cart"), {"sku-cap": 3})
    await _run(services, pool, producer, first, reused)

    [answer] = await _outcomes(pool, order_id)  # no order.rejected for an existing order
    assert isinstance(answer, OrderSubmissionRefused)
    assert answer.payload.reason_code == "order_id_conflict"
    assert answer.causation_id == reused.event_id  # the refused submission, not the order
    assert answer.payload.refused_event_id == reused.event_id
    assert answer.payload.order_id == answer.payload.original_order_id == order_id
    assert answer.payload.idempotency_key == reused.idempotency_key
    assert await _rows(pool, "dead_letters", "order_id", order_id) == 0
    assert await order_state(pool, order_id) == "built"
    assert await _count(pool, "SELECT total FROM orders WHERE order_id = $1", order_id) == 3000
    assert await _held(pool, order_id) == 2
    [row] = await _conflicts(pool, order_id)
    assert row["reason_code"] == "order_id_conflict"
    assert (row["existing_order_id"], row["existing_event_id"]) == (order_id, first.event_id)
    assert await _key_owner(pool, reused.idempotency_key) is None  # a refusal claims no key


async def test_a_redelivered_submission_has_no_second_effect(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    first = _order(_uid("idem-d"), _uid("shop-1:cart"))
    await publish(producer, first)  # the same message twice (same event id) ...
    await _run(services, pool, producer, first, _again(first))  # ... then re-sent anew
    order_id = first.correlation_id
    outputs = "SELECT count(*) FROM outbox WHERE producer = 'order_build' AND message_key = $1"
    assert await _count(pool, outputs, order_id) == 1  # the one order.built
    assert await _held(pool, order_id) == 2
    assert await _conflicts(pool, order_id) == []
    assert await _rows(pool, "order_duplicates", "order_id", order_id) == 0


async def test_a_concurrent_claim_of_the_same_key_waits_for_the_first(
    services: Settings, pool: asyncpg.Pool
) -> None:
    """Two transactions (two replicas) build orders under one key at the same time: the
    second waits on the key's unique index, then answers a duplicate; had the first rolled
    back, the second would have built."""
    await seed_catalogue(pool)
    for first_commits in (True, False):
        key = _uid("shop-1:race")
        a, b = _order(_uid("race-a"), key), _order(_uid("race-b"), key)
        stage = OrderBuild()
        async with pool.acquire() as one, pool.acquire() as two:
            first_tx = one.transaction()
            await first_tx.start()
            assert _types(await stage.handle(a, one, None)) == ["order.built"]
            second = asyncio.create_task(_handle_and_commit(stage, two, b))
            await eventually(partial(_waits_on_a_lock, pool, two), 30, "the second waits")
            await (first_tx.commit() if first_commits else first_tx.rollback())
            outputs = await second
        if first_commits:
            assert outputs == ["order.duplicate"]
            assert await order_state(pool, a.correlation_id) == "built"
            assert await order_state(pool, b.correlation_id) is None
        else:
            assert outputs == ["order.built"]
            assert await order_state(pool, a.correlation_id) is None
            assert await order_state(pool, b.correlation_id) == "built"


async def _handle_and_commit(
    stage: OrderBuild, conn: asyncpg.Connection, event: OrderSubmitted
) -> list[str]:
    async with conn.transaction():
        return _types(await stage.handle(event, conn, None))


def _types(events: Sequence[Envelope]) -> list[str]:
    return [e.event_type for e in events]


async def _waits_on_a_lock(pool: asyncpg.Pool, conn: asyncpg.Connection) -> bool:
    wait = await pool.fetchval(
        "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", conn.get_server_pid()
    )
    return bool(wait == "Lock")


async def test_same_key_on_two_partitions_and_two_replicas_builds_one_order(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    key = _uid("shop-1:twice")
    a, b = _order(_uid("part-a"), key), _order(_uid("part-b"), key)
    async with _order_build(services, pool, producer, replicas=2):
        await eventually(lambda: _group_members(services, 2), 60, "two replicas in the group")
        # Partitions 0 and 3 belong to different members under both range and round robin.
        await asyncio.gather(
            producer.send_and_wait(ORDERS_SUBMITTED.name, encode(a), key=b"p0", partition=0),
            producer.send_and_wait(ORDERS_SUBMITTED.name, encode(b), key=b"p3", partition=3),
        )
        await eventually(lambda: _processed(pool, a, b), 60, "both submissions processed")
    ids = [a.correlation_id, b.correlation_id]
    assert await _rows(pool, "orders", "order_id", *ids) == 1
    built = await pool.fetchval("SELECT order_id FROM orders WHERE order_id = ANY($1)", ids)
    [other] = [i for i in ids if i != built]
    [answer] = await _outcomes(pool, other)
    assert isinstance(answer, OrderDuplicate) and answer.payload.original_order_id == built
    assert await _held(pool, other) == 0


async def _group_members(settings: Settings, n: int) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        [resp] = await admin.describe_consumer_groups([f"{namespace()}.order_build"])
    finally:
        await admin.close()
    [group] = resp.to_object()["groups"]
    return bool(group["state"] == "Stable" and len(group["members"]) == n)


async def test_an_expired_key_counts_as_new_and_is_pruned_in_bounded_batches(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    retention = OrderBuild().retention_h
    key = _uid("shop-1:old")
    first = _order(_uid("old-a"), key)
    await _run(services, pool, producer, first)
    await pool.execute(
        """UPDATE order_idempotency_keys SET created_at = now() - make_interval(hours => $2)
           WHERE idempotency_key = $1""",
        key,
        retention + 1,
    )
    # Expired, not yet pruned: a retry under the old key is a new purchase (as with Stripe).
    later = _order(_uid("old-b"), key)
    await _run(services, pool, producer, later)
    assert await order_state(pool, later.correlation_id) == "built"
    assert await _key_owner(pool, key) == later.correlation_id

    # Pruning: at most store.PRUNE_BATCH rows at a time, fresh keys never.
    stale = [_uid("stale") for _ in range(store.PRUNE_BATCH + 200)]
    await pool.executemany(
        """INSERT INTO order_idempotency_keys (idempotency_key, order_id, request_digest,
                                               event_id, created_at)
           VALUES ($1, $1, 'x', gen_random_uuid(), now() - make_interval(hours => $2))""",
        [(k, retention + 1) for k in stale],
    )
    async with pool.acquire() as conn:
        assert await store.prune_keys(conn, retention) == store.PRUNE_BATCH
    assert await _rows(pool, "order_idempotency_keys", "idempotency_key", *stale) == 200
    # The stage prunes the rest on its own, on the next batch it handles.
    await _run(services, pool, producer, _order(_uid("old-c"), _uid("shop-1:new")))
    assert await _rows(pool, "order_idempotency_keys", "idempotency_key", *stale) == 0
    assert await _key_owner(pool, key) == later.correlation_id  # fresh: kept


async def test_the_whole_pipeline_settles_the_original_once_and_the_audit_stays_clean(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    """A replay, a key conflict and an order id conflict while the original order goes
    through every stage: it settles once, the others are answered, nothing else moves."""
    await seed_catalogue(pool)
    buyer = _uid("buyer-idem")
    await fund_wallet(pool, buyer, 50_000, f"idem-topup:{buyer}")
    key, cart = _uid("shop-1:pipe"), {"sku-tee": 2, "sku-novel": 1}
    first = _order(_uid("pipe-a"), key, cart, buyer)
    replay = _order(_uid("pipe-b"), key, cart, buyer)
    other_cart = _order(_uid("pipe-c"), key, {"sku-cap": 1}, buyer)
    reused_id = _order(first.correlation_id, _uid("shop-1:pipe"), {"sku-lamp": 1}, buyer)
    original = first.correlation_id

    async with simulator(services) as children:
        start_workers(children)
        await publish(producer, first)
        await eventually(lambda: _processed(pool, first), 90, "the original built")
        for event in (replay, other_cart, reused_id):
            await publish(producer, event)
        await eventually(lambda: _settled(pool, original), 120, f"{original} settled")
        await eventually(lambda: _processed(pool, replay, other_cart, reused_id), 60, "answers")

    by_order = {
        o: await _outcomes(pool, o)
        for o in (original, replay.correlation_id, other_cart.correlation_id)
    }
    # The original's outcome is order.settled; the reused id's refusal is not an outcome of it.
    assert sorted(_types(by_order[original])) == ["order.settled", "order.submission_refused"]
    [refused] = [e for e in by_order[original] if isinstance(e, OrderSubmissionRefused)]
    assert refused.payload.reason_code == "order_id_conflict"
    assert refused.causation_id == refused.payload.refused_event_id == reused_id.event_id
    assert refused.payload.original_order_id == original
    [dup] = by_order[replay.correlation_id]
    assert isinstance(dup, OrderDuplicate) and dup.payload.original_order_id == original
    [conflict] = by_order[other_cart.correlation_id]
    assert isinstance(conflict, OrderSubmissionRefused)
    assert conflict.payload.reason_code == "idempotency_key_conflict"
    assert conflict.payload.original_order_id == original
    assert conflict.payload.refused_event_id == other_cart.event_id

    everyone = (original, replay.correlation_id, other_cart.correlation_id)
    assert await _rows(pool, "ledger_transactions", "order_id", *everyone) == 1  # one posting
    assert await _count(pool, "SELECT total FROM orders WHERE order_id = $1", original) == 5500
    stock = "SELECT array_agg(state) FROM stock_holds WHERE order_id = ANY($1)"
    assert await pool.fetchval(stock, everyone) == ["sold", "sold"]  # the original's 2 lines
    assert await _rows(pool, "dead_letters", "order_id", *everyone) == 0
    assert await _rows(pool, "order_submission_conflicts", "existing_order_id", original) == 2
    await assert_audit_clean(pool)


async def _settled(pool: asyncpg.Pool, order_id: str) -> bool:
    return await order_state(pool, order_id) == "settled"
