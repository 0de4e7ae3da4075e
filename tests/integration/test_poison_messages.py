"""A message that can never be processed goes to the dead-letter topic with headers saying
why and where from; the consumer neither stops nor loops, and the next message flows."""

import asyncio
import json
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts.events.orders import OrderLine, OrderSubmitted, OrderSubmittedPayload
from contracts.topics import ORDERS_SUBMITTED
from infra.settings import Settings
from tests.support.pipeline import eventually, order_state, publish, seed_catalogue
from workers.order_build.step import OrderBuild
from workers.runtime.consumer import StageRunner
from workers.runtime.health import Health

pytestmark = pytest.mark.integration


def _order(order_id: str, **overrides: object) -> OrderSubmitted:
    payload = OrderSubmittedPayload(
        order_id=order_id,
        buyer_id="buyer-poison",
        currency="EUR",
        items=[OrderLine(sku_id="sku-tee", quantity=1)],
    )
    return OrderSubmitted.new(order_id, payload, idempotency_key=order_id)


async def _dead_letters(settings: Settings, offsets: set[tuple[int, int]]) -> list[dict[str, str]]:
    """The headers of the dead-letter copies of the messages at `offsets` ((partition,
    offset) pairs); other tests' dead letters on the same topic are passed over."""
    consumer = AIOKafkaConsumer(
        ORDERS_SUBMITTED.dlq,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"test-dlq-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=2_000_000,
    )
    await consumer.start()
    found: list[dict[str, str]] = []
    try:
        while len(found) < len(offsets):
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
            for records in batch.values():
                for r in records:
                    headers = {k: v.decode(errors="replace") for k, v in r.headers if v}
                    where = (
                        int(headers.get("payflow-dlq-source-partition", -1)),
                        int(headers.get("payflow-dlq-source-offset", -1)),
                    )
                    if where in offsets:
                        found.append(headers)
    finally:
        await consumer.stop()
    return found


async def test_poison_goes_to_dlq_and_the_next_message_flows(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    topic = ORDERS_SUBMITTED.name
    first = await producer.send_and_wait(topic, b"\x00\xffnot json", key=b"poison-1")
    bad = _order(f"o-{uuid.uuid4().hex[:8]}").model_dump(mode="json")
    bad["schema_version"] = 9
    second = await producer.send_and_wait(topic, json.dumps(bad).encode(), key=b"poison-2")
    good = _order(f"o-{uuid.uuid4().hex[:8]}")
    await publish(producer, good)

    stop = asyncio.Event()
    runner = StageRunner(OrderBuild(), services, pool, producer, Health("order_build"))
    task = asyncio.create_task(runner.run(stop))
    try:
        await eventually(lambda: _built(pool, good.correlation_id), 60, "the good order built")
    finally:
        stop.set()
        await task

    letters = await _dead_letters(
        services, {(first.partition, first.offset), (second.partition, second.offset)}
    )
    reasons = {d["payflow-dlq-reason"] for d in letters}
    assert reasons == {"not_json", "unsupported_schema_version"}
    for headers in letters:
        assert headers["payflow-dlq-source-topic"] == topic
        assert int(headers["payflow-dlq-source-offset"]) >= 0
        assert headers["payflow-dlq-stage"] == "order_build"
        assert int(headers["payflow-dlq-attempts"]) == 1
        assert headers["payflow-dlq-failed-at"]
    rows = await pool.fetch(
        "SELECT reason_code, detail FROM dead_letters WHERE consumer = 'order_build'"
    )
    assert {r["reason_code"] for r in rows} >= reasons
    assert any("schema_version 9" in r["detail"] for r in rows)


async def _built(pool: asyncpg.Pool, order_id: str) -> bool:
    return await order_state(pool, order_id) == "built"
