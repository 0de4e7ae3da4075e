"""No input can stall a stage: each of the inputs that stalled order build on the old main
(a 4,301-digit number, a NUL byte in a header, a message close to the broker's limit, a
record the Kafka client cannot parse, an event that fails the batch outside its savepoint)
is dead-lettered with a specific reason, and the order published after them is built."""

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts.envelope import Envelope
from contracts.topics import ORDERS_SUBMITTED
from infra.settings import PROJECT_ROOT, Settings
from tests.support.pipeline import eventually, order_state, order_submitted, publish, seed_catalogue
from workers.order_build.step import OrderBuild
from workers.runtime.consumer import StageRunner
from workers.runtime.dead_letters import TRUNCATED_HEADER
from workers.runtime.health import Health
from workers.runtime.stage import Stage

pytestmark = pytest.mark.integration
TOPIC = ORDERS_SUBMITTED.name


async def _run_until_built(
    stage: Stage, settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer, order_id: str
) -> Health:
    health = Health(stage.name)
    stop = asyncio.Event()
    task = asyncio.create_task(StageRunner(stage, settings, pool, producer, health).run(stop))
    try:

        async def built() -> bool:
            return await order_state(pool, order_id) == "built"

        await eventually(built, 90, f"order {order_id} built after the bad input")
    finally:
        stop.set()
        await task
    return health


async def _dead_letter(pool: asyncpg.Pool, **where: Any) -> asyncpg.Record:
    column, value = next(iter(where.items()))
    row = await pool.fetchrow(
        f"SELECT * FROM dead_letters WHERE {column} = $1 ORDER BY dead_letter_id DESC LIMIT 1",
        value,
    )
    assert row is not None, f"no dead letter with {column} = {value!r}"
    return row


@pytest.fixture
async def big_producer(services: Settings) -> AsyncIterator[AIOKafkaProducer]:
    """A producer allowed to send what the broker accepts (1 MB), above our 1 MiB request."""
    p = AIOKafkaProducer(bootstrap_servers=services.kafka_bootstrap, max_request_size=1_100_000)
    await p.start()
    yield p
    await p.stop()


async def _dlq_copy(settings: Settings, offset: int, partition: int) -> Any:
    consumer = AIOKafkaConsumer(
        ORDERS_SUBMITTED.dlq,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"test-dlq-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_bytes=5_000_000,
        max_partition_fetch_bytes=2_000_000,
    )
    await consumer.start()
    try:
        for _ in range(30):
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for r in records:
                    h = dict(r.headers)
                    if (
                        h.get("payflow-dlq-source-offset") == str(offset).encode()
                        and h.get("payflow-dlq-source-partition") == str(partition).encode()
                    ):
                        return r
    finally:
        await consumer.stop()
    raise AssertionError(f"no dead-letter copy of offset {offset}")


async def test_inputs_that_stalled_the_stage_are_dead_lettered_and_the_next_order_flows(
    services: Settings,
    pool: asyncpg.Pool,
    producer: AIOKafkaProducer,
    big_producer: AIOKafkaProducer,
) -> None:
    await seed_catalogue(pool)
    key = f"poison-{uuid.uuid4().hex[:8]}".encode()  # one partition, so order is kept
    huge_number = b'{"event_type": "order.submitted", "schema_version": 1, "n": ' + b"9" * 4301
    huge_number += b"}"
    number_at = await producer.send_and_wait(TOPIC, huge_number, key=key)
    nul_at = await producer.send_and_wait(
        TOPIC, b"not json\x00", key=key, headers=[("trace\x00id", b"a\x00b"), ("x", b"\xff")]
    )
    big_value = b"x" * 1_040_000
    big_at = await big_producer.send_and_wait(TOPIC, big_value, key=key)
    writer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.raw_records",
        services.kafka_bootstrap,
        TOPIC,
        key.decode(),
        "unreadable",
        cwd=PROJECT_ROOT,
    )
    assert await writer.wait() == 0
    good = order_submitted(
        f"after-poison-{uuid.uuid4().hex[:8]}", "buyer-poison", {"sku-tee": 1}, "wallet_only"
    )
    await producer.send_and_wait(TOPIC, good.model_dump_json().encode(), key=key)

    await _run_until_built(OrderBuild(), services, pool, producer, good.correlation_id)

    number = await _dead_letter(pool, source_offset=number_at.offset)
    assert number["reason_code"] == "number_too_large"
    assert bytes(number["message_value"]) == huge_number

    nul = await _dead_letter(pool, source_offset=nul_at.offset)
    assert nul["reason_code"] == "not_json"
    assert bytes(nul["message_value"]) == b"not json\x00"  # kept exactly, NUL included
    assert [bytes(k) for k in nul["header_keys"]] == [b"trace\x00id", b"x"]
    assert [bytes(v) for v in nul["header_values"]] == [b"a\x00b", b"\xff"]

    big = await _dead_letter(pool, source_offset=big_at.offset)
    assert big["reason_code"] == "not_json"
    assert bytes(big["message_value"]) == big_value  # the table keeps it whole
    copy = await _dlq_copy(services, big_at.offset, big_at.partition)
    assert dict(copy.headers)[TRUNCATED_HEADER] == str(len(big_value)).encode()
    assert len(copy.value) < len(big_value)

    unreadable = await _dead_letter(pool, reason_code="unreadable_record")
    assert unreadable["source_offset"] == big_at.offset + 1
    assert unreadable["message_value"] is None


class FailsAtCommit(OrderBuild):
    """Breaks the batch outside any event's savepoint when it holds a `boom-` order: only
    bisection can tell which event is to blame."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    async def handle(
        self, event: Envelope, tx: asyncpg.Connection, prepared: Any
    ) -> Sequence[Envelope]:
        self.seen.add(event.correlation_id)
        return await super().handle(event, tx, prepared)

    async def handle_batch(
        self, events: list[Envelope], tx: asyncpg.Connection, prepared: Mapping[UUID, Any]
    ) -> list[Sequence[Envelope]]:
        self.seen.update(e.correlation_id for e in events)
        return await super().handle_batch(events, tx, prepared)

    async def before_commit(self, tx: asyncpg.Connection) -> None:
        boom = any(o.startswith("boom-") for o in self.seen)
        self.seen.clear()
        if boom:
            raise ValueError("coalesced write refused")
        await super().before_commit(tx)  # order build's own: the batch's stock holds


@pytest.mark.parametrize(
    ("stage", "prefix", "reason"),
    [
        (FailsAtCommit, "boom-", "unhandled_error"),
    ],
)
async def test_a_batch_that_keeps_failing_is_bisected_to_the_event_that_causes_it(
    services: Settings,
    pool: asyncpg.Pool,
    producer: AIOKafkaProducer,
    stage: type[OrderBuild],
    prefix: str,
    reason: str,
) -> None:
    await seed_catalogue(pool)
    run = uuid.uuid4().hex[:6]
    before = [f"good-{run}-a{i}" for i in range(4)]
    bad = f"{prefix}{run}"
    after = [f"good-{run}-b{i}" for i in range(4)]
    for order_id in [*before, bad, *after]:
        await publish(
            producer, order_submitted(order_id, "buyer-bisect", {"sku-tee": 1}, "wallet_only")
        )

    quick = services.model_copy(update={"retry_budget_s": 2.0})
    await _run_until_built(stage(), quick, pool, producer, after[-1])

    for order_id in before + after:
        assert await order_state(pool, order_id) == "built", order_id
    assert await order_state(pool, bad) is None
    row = await _dead_letter(pool, order_id=bad)
    assert row["reason_code"] == reason
    held = await pool.fetchval("SELECT count(*) FROM stock_holds WHERE order_id = $1", bad)
    assert held == 0
