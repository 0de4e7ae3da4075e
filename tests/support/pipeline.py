"""Helpers for tests that run the real workers as processes."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord
from redis.asyncio import Redis

from contracts.codec import decode, encode
from contracts.envelope import Envelope
from contracts.events.orders import (
    OrderLine,
    OrderSubmitted,
    OrderSubmittedPayload,
    PaymentPreference,
)
from contracts.topics import ORDERS_SUBMITTED, namespace, topic_for
from infra.settings import Settings
from tests.support.dlq import committed_offset
from workers.app import build_stage
from workers.ops import seed
from workers.ops.audit import run_audit
from workers.ops.processes import Children
from workers.runtime.batch import run_batch
from workers.runtime.outbox import Message


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout_s: float = 60.0, what: str = "condition"
) -> None:
    """Poll until `check` holds (outcomes, not timings, are what tests assert)."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout_s:.0f} s")
        await asyncio.sleep(0.2)


@asynccontextmanager
async def simulator(
    settings: Settings, env: dict[str, str] | None = None
) -> AsyncIterator[Children]:
    children = Children(settings.state_dir / "logs" / "tests")
    children.start("test-gateway-simulator", "run", "gateway-simulator", env=env)
    try:
        yield children
    finally:
        await children.stop()


def start_workers(children: Children, env: dict[str, str] | None = None) -> None:
    children.start("test-workers", "run", "all", env=env)


async def seed_catalogue(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await seed.seed_catalogue(conn)


async def fund_wallet(pool: asyncpg.Pool, buyer: str, amount: int, key: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await seed.top_up(conn, buyer, amount, key)


async def publish(producer: AIOKafkaProducer, event: Envelope) -> None:
    await producer.send_and_wait(
        topic_for(type(event)).name, encode(event), key=event.correlation_id.encode()
    )


async def order_state(pool: asyncpg.Pool, order_id: str) -> str | None:
    state: str | None = await pool.fetchval(
        """SELECT state FROM orders WHERE order_id = $1
           UNION ALL SELECT 'rejected' FROM order_rejections WHERE order_id = $1""",
        order_id,
    )
    return state


async def assert_audit_clean(pool: asyncpg.Pool) -> None:
    """Every money invariant holds (the audit's one snapshot)."""
    async with pool.acquire() as conn:
        report = await run_audit(conn)
    assert report["ok"], report["violations"]


def order_submitted(
    order_id: str,
    buyer: str,
    lines: dict[str, int],
    preference: PaymentPreference = "wallet_first",
) -> OrderSubmitted:
    """An order as an upstream shop publishes it (EUR; the order id is its idempotency key)."""
    return OrderSubmitted.new(
        order_id,
        OrderSubmittedPayload(
            order_id=order_id,
            buyer_id=buyer,
            currency="EUR",
            payment_preference=preference,
            items=[OrderLine(sku_id=sku, quantity=qty) for sku, qty in lines.items()],
        ),
        idempotency_key=order_id,
    )


async def balances(pool: asyncpg.Pool, account_id: str) -> tuple[int, int, int]:
    """(total, available, frozen) of an account; zeros if it does not exist yet."""
    row = await pool.fetchrow(
        "SELECT total, available, frozen FROM accounts WHERE account_id = $1", account_id
    )
    return (row["total"], row["available"], row["frozen"]) if row else (0, 0, 0)


# Records made up for `run_batch` sit far past any offset the session's topics reach: the
# inbox and dead-letter rows they leave must not pass for those of messages really sent to
# partition 0 (the hostile-input property test finds its messages by offset).
MADE_UP_OFFSETS = 10**12


def consumed(event: Envelope, offset: int) -> ConsumerRecord[Any, Any]:
    """The event as a consumer reads it from its topic (partition 0), for `run_batch`."""
    value = encode(event)
    return ConsumerRecord(
        topic=topic_for(type(event)).name,
        partition=0,
        offset=MADE_UP_OFFSETS + offset,
        timestamp=0,
        timestamp_type=0,
        key=event.correlation_id.encode(),
        value=value,
        checksum=None,
        serialized_key_size=len(event.correlation_id),
        serialized_value_size=len(value),
        headers=(),
    )


def published(messages: list[Message]) -> list[Envelope]:
    """The events a batch published, decoded (its dead letters left out)."""
    return [
        decode(m.topic, m.value)
        for m in messages
        if m.value is not None and not m.topic.endswith(".dlq")
    ]


async def through_stages(
    services: Settings, pool: asyncpg.Pool, events: Sequence[Envelope], stages: Sequence[str]
) -> list[Envelope]:
    """`events` carried through the named stages in process, one batch each (`run_batch` on
    the real Postgres and Redis): what the last stage published."""
    redis = Redis.from_url(services.redis_url)
    try:
        async with aiohttp.ClientSession() as http:
            for name in stages:
                stage = build_stage(name, services, pool, redis, http)
                records = [consumed(e, i) for i, e in enumerate(events)]
                events = published((await run_batch(pool, stage, records, 1)).messages)
    finally:
        await redis.aclose()
    return list(events)


async def committed_lag(settings: Settings, stage: str = "order_build") -> int:
    """Messages on orders.submitted that `stage`'s group has not committed past."""
    topic = ORDERS_SUBMITTED.name
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    await consumer.start()
    try:
        (described,) = await admin.describe_topics([topic])
        tps = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        assert tps, f"no partitions known for {topic}"
        ends = await consumer.end_offsets(tps)
        group = f"{namespace()}.{stage}"  # -1 when the group committed nothing there yet
        return sum([ends[tp] - max(await committed_offset(admin, group, tp), 0) for tp in tps])
    finally:
        await consumer.stop()
        await admin.close()
