"""Reading what the runtime parked: dead-letter copies on `<topic>.dlq`, found by the source
position their headers name, and a consumer group's committed offsets."""

import asyncio
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts.topics import DLQ_HEADER_PREFIX
from infra.settings import Settings

# (source topic, source partition, source offset)
Position = tuple[str, int, int]


def header_values(record: Any, name: str) -> list[bytes | None]:
    """Every value of header `name` on a consumed record, in order."""
    return [v for k, v in record.headers if k == name]


def source_position(record: Any) -> Position | None:
    """Where a dead-letter copy came from, if its headers say so exactly once each."""
    found = []
    for field in ("source-topic", "source-partition", "source-offset"):
        values = header_values(record, DLQ_HEADER_PREFIX + field)
        if len(values) != 1 or values[0] is None:
            return None
        found.append(values[0].decode())
    return found[0], int(found[1]), int(found[2])


class DlqReader:
    """Reads a dead-letter topic from its beginning and keeps every copy by source position
    (a list: a redelivered message may be parked more than once)."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=f"test-dlq-reader-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_bytes=8_000_000,
            max_partition_fetch_bytes=2_000_000,
        )
        self.copies: dict[Position, list[Any]] = {}

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def wait_for(self, positions: set[Position], timeout_s: float = 60.0) -> None:
        """Read on until there is a copy of each position; AssertionError if some never come."""
        deadline = time.monotonic() + timeout_s
        while missing := positions - self.copies.keys():
            if time.monotonic() > deadline:
                raise AssertionError(f"no dead-letter copy of {sorted(missing)}")
            batch = await self._consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for r in records:
                    pos = source_position(r)
                    if pos is not None:
                        self.copies.setdefault(pos, []).append(r)
            await asyncio.sleep(0)


async def committed_offset(admin: AIOKafkaAdminClient, group: str, tp: TopicPartition) -> int:
    """The group's committed offset on `tp` as the broker has it (-1 when none)."""
    offsets = await admin.list_consumer_group_offsets(group, partitions=[tp])
    meta = offsets.get(tp)
    return -1 if meta is None else int(meta.offset)
