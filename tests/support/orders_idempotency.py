"""Helpers for the tests of upstream idempotency of order.submitted (tests/integration/
test_order_idempotency*.py, test_order_submission_conflicts.py): submissions under a chosen
idempotency key, the order_build stage run in-process, and what it recorded and published
for an order id, read from Postgres and from the outcomes topic itself."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts.codec import ContractError, decode
from contracts.envelope import Envelope
from contracts.events.orders import OrderLine, OrderSubmitted, OrderSubmittedPayload
from contracts.topics import ORDERS_OUTCOMES
from infra.settings import Settings
from tests.support.pipeline import eventually, publish
from workers.order_build.step import OrderBuild
from workers.runtime.consumer import StageRunner
from workers.runtime.health import Health

TEE = {"sku-tee": 2}


def uid(prefix: str) -> str:
    """A new id with a readable prefix, so tests never see each other's rows."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def submission(
    order_id: str, key: str, cart: dict[str, int] = TEE, buyer: str = "buyer-idem"
) -> OrderSubmitted:
    """An order.submitted with its own idempotency key (not the order id)."""
    payload = OrderSubmittedPayload(
        order_id=order_id,
        buyer_id=buyer,
        currency="EUR",
        items=[OrderLine(sku_id=sku, quantity=q) for sku, q in cart.items()],
    )
    return OrderSubmitted.new(order_id, payload, idempotency_key=key)


def sent_again(event: OrderSubmitted) -> OrderSubmitted:
    """The same submission re-sent by the shop as a new message (a new event id)."""
    return event.model_copy(update={"event_id": uuid.uuid4()})


@asynccontextmanager
async def order_build_running(
    settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer, replicas: int = 1
) -> AsyncIterator[list[OrderBuild]]:
    """`replicas` order_build stages running in this process, one consumer group."""
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


async def submit_in_turn(
    settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer, *events: Envelope
) -> None:
    """Publish the events one by one, each processed before the next is sent (across
    partitions Kafka promises no order, and these tests are about which one came first)."""
    async with order_build_running(settings, pool, producer):
        for event in events:
            await publish(producer, event)
            await eventually(partial(processed, pool, event), 60, f"{event.event_id} done")


async def processed(pool: asyncpg.Pool, *events: Envelope) -> bool:
    """Whether order_build has handled every one of these events (an inbox row each)."""
    n = await pool.fetchval(
        "SELECT count(*) FROM inbox WHERE consumer = 'order_build' AND event_id = ANY($1)",
        [e.event_id for e in events],
    )
    return bool(n == len(events))


async def outcomes(pool: asyncpg.Pool, order_id: str) -> list[Envelope]:
    """What order build published on orders.outcomes for this order id, in order."""
    rows = await pool.fetch(
        """SELECT message_value FROM outbox WHERE topic = $1 AND message_key = $2
           ORDER BY outbox_id""",
        ORDERS_OUTCOMES.name,
        order_id,
    )
    return [decode(ORDERS_OUTCOMES.name, bytes(r[0])) for r in rows]


async def count(pool: asyncpg.Pool, sql: str, *args: Any) -> int:
    """The one number a query returns."""
    return int(await pool.fetchval(sql, *args))


async def rows_with(pool: asyncpg.Pool, table: str, column: str, *values: object) -> int:
    """How many rows of `table` have `column` in `values`."""
    return await count(pool, f"SELECT count(*) FROM {table} WHERE {column} = ANY($1)", values)


async def stock_held(pool: asyncpg.Pool, order_id: str) -> int:
    """How many units the order's stock holds cover."""
    return await count(
        pool, "SELECT coalesce(sum(quantity), 0) FROM stock_holds WHERE order_id = $1", order_id
    )


async def key_owner(pool: asyncpg.Pool, key: str) -> str | None:
    """The order an idempotency key is kept for, if it is kept."""
    owner: str | None = await pool.fetchval(
        "SELECT order_id FROM order_idempotency_keys WHERE idempotency_key = $1", key
    )
    return owner


async def conflicts(pool: asyncpg.Pool, order_id: str) -> list[asyncpg.Record]:
    """The refused submissions recorded for this order id, oldest first."""
    return list(
        await pool.fetch(
            "SELECT * FROM order_submission_conflicts WHERE order_id = $1 ORDER BY conflict_id",
            order_id,
        )
    )


async def published_key(settings: Settings, event_id: uuid.UUID) -> bytes:
    """The Kafka key of the outcome with this event id, read from the topic itself."""
    consumer = AIOKafkaConsumer(
        ORDERS_OUTCOMES.name,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=uid("test-outcomes"),
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


def event_types(events: Sequence[Envelope]) -> list[str]:
    return [e.event_type for e in events]
