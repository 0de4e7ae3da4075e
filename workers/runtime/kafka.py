"""Kafka clients configured for the money path: explicit commits, no silent skipping."""

from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from infra.settings import Settings

# A message as the consumer hands it over (key and value are raw bytes).
Record: TypeAlias = ConsumerRecord[Any, Any]


def make_producer(settings: Settings, client_id: str) -> AIOKafkaProducer:
    # acks=all + idempotence: a retried send is never written twice to a partition.
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        # A stage's outputs for a batch (hundreds of 1-2 KB events) fit one record batch per
        # partition: one produce round trip each, where 16 KB (the default) took several in
        # turn (idempotence sends one batch per partition at a time). Under the broker's
        # 1 MB message.max.bytes.
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
    )


def make_consumer(settings: Settings, group_id: str, client_id: str) -> AIOKafkaConsumer:
    # No auto-commit (we commit processed offsets only) and earliest: a new group
    # must not skip events published before it joined.
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_interval_ms=settings.max_poll_interval_ms,
        max_poll_records=settings.batch_max_records,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=max(1_000, settings.session_timeout_ms // 5),
        isolation_level="read_committed",
    )
