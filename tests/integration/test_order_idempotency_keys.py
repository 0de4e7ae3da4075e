"""Upstream idempotency of order.submitted: the keys themselves. Two claims of one key at
once (two transactions, or two replicas reading two partitions) build one order, the second
waiting for the first; a key older than the retention counts as new, and expired keys are
pruned in bounded batches, by hand and by the stage on its own. Against the real Kafka and
Postgres: real events through the order_build stage, or its handler in transactions."""

import asyncio
from functools import partial

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from contracts.codec import encode
from contracts.events.orders import OrderSubmitted
from contracts.events.outcomes import OrderDuplicate
from contracts.topics import ORDERS_SUBMITTED, namespace
from infra.settings import Settings
from tests.support.orders_idempotency import (
    event_types,
    key_owner,
    order_build_running,
    outcomes,
    processed,
    rows_with,
    stock_held,
    submission,
    submit_in_turn,
    uid,
)
from tests.support.pipeline import eventually, order_state, seed_catalogue
from workers.order_build import store
from workers.order_build.step import OrderBuild

pytestmark = pytest.mark.integration


async def test_a_concurrent_claim_of_the_same_key_waits_for_the_first(
    services: Settings, pool: asyncpg.Pool
) -> None:
    """Two transactions (two replicas) build orders under one key at the same time: the
    second waits on the key's unique index, then answers a duplicate; had the first rolled
    back, the second would have built."""
    await seed_catalogue(pool)
    for first_commits in (True, False):
        key = uid("shop-1:race")
        a, b = submission(uid("race-a"), key), submission(uid("race-b"), key)
        stage = OrderBuild()
        async with pool.acquire() as one, pool.acquire() as two:
            first_tx = one.transaction()
            await first_tx.start()
            assert event_types(await stage.handle(a, one, None)) == ["order.built"]
            second = asyncio.create_task(_handle_and_commit(stage, two, b))
            await eventually(partial(_waits_on_a_lock, pool, two), 30, "the second waits")
            if first_commits:
                await stage.before_commit(one)  # as the runtime does: the batch's stock holds
                await first_tx.commit()
            else:
                await first_tx.rollback()
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
        outputs = event_types(await stage.handle(event, conn, None))
        await stage.before_commit(conn)  # as the runtime does
        return outputs


async def _waits_on_a_lock(pool: asyncpg.Pool, conn: asyncpg.Connection) -> bool:
    wait = await pool.fetchval(
        "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", conn.get_server_pid()
    )
    return bool(wait == "Lock")


async def test_same_key_on_two_partitions_and_two_replicas_builds_one_order(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    key = uid("shop-1:twice")
    a, b = submission(uid("part-a"), key), submission(uid("part-b"), key)
    async with order_build_running(services, pool, producer, replicas=2):
        await eventually(lambda: _group_members(services, 2), 60, "two replicas in the group")
        # Partitions 0 and 3 belong to different members under both range and round robin.
        await asyncio.gather(
            producer.send_and_wait(ORDERS_SUBMITTED.name, encode(a), key=b"p0", partition=0),
            producer.send_and_wait(ORDERS_SUBMITTED.name, encode(b), key=b"p3", partition=3),
        )
        await eventually(lambda: processed(pool, a, b), 60, "both submissions processed")
    ids = [a.correlation_id, b.correlation_id]
    assert await rows_with(pool, "orders", "order_id", *ids) == 1
    built = await pool.fetchval("SELECT order_id FROM orders WHERE order_id = ANY($1)", ids)
    [other] = [i for i in ids if i != built]
    [answer] = await outcomes(pool, other)
    assert isinstance(answer, OrderDuplicate) and answer.payload.original_order_id == built
    assert await stock_held(pool, other) == 0


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
    key = uid("shop-1:old")
    first = submission(uid("old-a"), key)
    await submit_in_turn(services, pool, producer, first)
    await pool.execute(
        """UPDATE order_idempotency_keys SET created_at = now() - make_interval(hours => $2)
           WHERE idempotency_key = $1""",
        key,
        retention + 1,
    )
    # Expired, not yet pruned: a retry under the old key is a new purchase (as with Stripe).
    later = submission(uid("old-b"), key)
    await submit_in_turn(services, pool, producer, later)
    assert await order_state(pool, later.correlation_id) == "built"
    assert await key_owner(pool, key) == later.correlation_id

    # Pruning: at most store.PRUNE_BATCH rows at a time, fresh keys never.
    stale = [uid("stale") for _ in range(store.PRUNE_BATCH + 200)]
    await pool.executemany(
        """INSERT INTO order_idempotency_keys (idempotency_key, order_id, request_digest,
                                               event_id, created_at)
           VALUES ($1, $1, 'x', gen_random_uuid(), now() - make_interval(hours => $2))""",
        [(k, retention + 1) for k in stale],
    )
    async with pool.acquire() as conn:
        assert await store.prune_keys(conn, retention) == store.PRUNE_BATCH
    assert await rows_with(pool, "order_idempotency_keys", "idempotency_key", *stale) == 200
    # The stage prunes the rest on its own, on the next batch it handles.
    await submit_in_turn(services, pool, producer, submission(uid("old-c"), uid("shop-1:new")))
    assert await rows_with(pool, "order_idempotency_keys", "idempotency_key", *stale) == 0
    assert await key_owner(pool, key) == later.correlation_id  # fresh: kept
