"""Sending in batches (runtime/produce.py) on the real Kafka: each message lands where
`send()` would have put it, in the order given per partition, headers intact, and a message
larger than a record batch still goes (in a batch of its own)."""

import uuid
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer

from infra.services.kafka import delete_topics, ensure_topics
from infra.settings import Settings
from workers.runtime.kafka import make_producer
from workers.runtime.outbox import Message
from workers.runtime.produce import deliver_all

pytestmark = pytest.mark.integration


async def test_batches_keep_send_partitions_order_and_headers(services: Settings) -> None:
    uid = uuid.uuid4().hex[:10]
    batched, single = f"test-produce-{uid}-batched", f"test-produce-{uid}-single"
    await ensure_topics(services.kafka_bootstrap, {batched: 6, single: 6})
    producer = make_producer(services, f"test-produce-{uid}")
    await producer.start()
    try:
        keys = [f"order-{i % 40}".encode() for i in range(400)]
        big = b"B" * (400 * 1024)  # larger than one record batch (256 KB)
        messages = [
            Message(batched, k, f"{i}".encode() if i != 123 else big, (("n", f"{i}".encode()),))
            for i, k in enumerate(keys)
        ]
        await deliver_all(producer, messages)
        for i, k in enumerate(keys):  # the same keys through send(), one by one
            await producer.send_and_wait(single, value=f"{i}".encode(), key=k)
        got, expected = await _read(services, batched, 400), await _read(services, single, 400)
    finally:
        await producer.stop()
        await delete_topics(services.kafka_bootstrap, [batched, single])
    by_key = {key: partition for partition, key, _, _ in expected}
    assert all(by_key[key] == partition for partition, key, _, _ in got)  # as send() chose
    per_partition: dict[int, list[int]] = defaultdict(list)
    for partition, _, n, headers in got:
        per_partition[partition].append(n)
        assert headers == (("n", str(n).encode()),)
    assert all(ns == sorted(ns) for ns in per_partition.values())  # order given, per partition
    assert sorted(n for ns in per_partition.values() for n in ns) == list(range(400))


Got = tuple[int, bytes, int, tuple[tuple[str, bytes], ...]]  # partition, key, n, headers


async def _read(services: Settings, topic: str, count: int) -> list[Got]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=services.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    out: list[Got] = []
    try:
        for _ in range(30):  # at most a minute
            if len(out) >= count:
                break
            for records in (await consumer.getmany(timeout_ms=2_000)).values():
                for r in records:
                    n = int(r.headers[0][1]) if r.headers else int(r.value)
                    out.append((r.partition, r.key, n, tuple(r.headers)))
    finally:
        await consumer.stop()
    return out
