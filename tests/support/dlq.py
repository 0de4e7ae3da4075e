"""Reading and checking what the runtime parked: dead-letter copies on `<topic>.dlq`, found
by the source position their headers name, the `dead_letters` and `inbox` rows at source
positions, a consumer group's committed offsets, and checks that a row and a copy keep the
original message as the runtime promises."""

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts.topics import DLQ_HEADER_FIELDS, DLQ_HEADER_PREFIX
from infra.settings import Settings
from workers.runtime.dead_letters import MAX_DLQ_MESSAGE_BYTES, TRUNCATED_HEADER

# (source topic, source partition, source offset)
Position = tuple[str, int, int]
Headers = tuple[tuple[str, bytes | None], ...]


class Original(Protocol):
    """A message as it was sent, before the runtime parked it."""

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def headers(self) -> Headers: ...


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


async def dead_letter_rows(
    pool: asyncpg.Pool, consumer: str, topic: str, partition: int, offsets: list[int]
) -> dict[int, Any]:
    """The `dead_letters` rows of `consumer` at these source offsets, by offset."""
    return {
        r["source_offset"]: r
        for r in await pool.fetch(
            """SELECT * FROM dead_letters WHERE consumer = $1 AND source_topic = $2
               AND source_partition = $3 AND source_offset = ANY($4::bigint[])""",
            consumer,
            topic,
            partition,
            offsets,
        )
    }


async def inboxed_offsets(
    pool: asyncpg.Pool, consumer: str, topic: str, partition: int, offsets: list[int]
) -> set[int]:
    """Which of these offsets `consumer` processed (has an `inbox` row for)."""
    return {
        r["kafka_offset"]
        for r in await pool.fetch(
            """SELECT kafka_offset FROM inbox WHERE consumer = $1 AND topic = $2
               AND kafka_partition = $3 AND kafka_offset = ANY($4::bigint[])""",
            consumer,
            topic,
            partition,
            offsets,
        )
    }


def check_row(row: Any, sent: Original, where: str) -> None:
    """The table keeps the original bytes exactly."""
    assert row["reason_code"], where
    assert row["detail"], where
    assert row["attempts"] >= 1, where
    assert row["message_key"] == sent.key, where
    assert row["message_value"] == sent.value, where
    assert list(row["header_keys"]) == [k.encode() for k, _ in sent.headers], where
    assert list(row["header_values"]) == [v for _, v in sent.headers], where


@dataclass(frozen=True)
class CopyCuts:
    """What a dead-letter copy left out of the original: part of its value, some headers."""

    value: bool
    headers: bool


def check_copy(copy_: Any, row: Any, sent: Original, stage: str, where: str) -> CopyCuts:
    """The copy on `<topic>.dlq` of the message parked as `row` by `stage`: our headers, each
    once; the original's headers in order; its key and value whole or cut as announced."""
    heads = copy_.headers
    for name in DLQ_HEADER_FIELDS:  # ours, each once, replacing any the input carried
        assert len(header_values(copy_, DLQ_HEADER_PREFIX + name)) == 1, (name, where)
    ours = {k: v for k, v in heads if k.startswith(DLQ_HEADER_PREFIX)}
    assert ours[DLQ_HEADER_PREFIX + "reason"] == row["reason_code"].encode(), where
    assert ours[DLQ_HEADER_PREFIX + "stage"] == stage.encode(), where
    assert int(ours[DLQ_HEADER_PREFIX + "attempts"]) >= 1, where
    assert ours[DLQ_HEADER_PREFIX + "detail"], where
    datetime.fromisoformat(ours[DLQ_HEADER_PREFIX + "failed-at"].decode())

    # The original headers, in order: all of them, or those that fit and a note saying so.
    original = [(k, v) for k, v in sent.headers if not k.startswith(DLQ_HEADER_PREFIX)]
    kept = [(k, v) for k, v in heads if not k.startswith(DLQ_HEADER_PREFIX)]
    assert kept == original[: len(kept)], where
    cut_headers = len(kept) < len(original)
    if cut_headers:
        assert header_values(copy_, DLQ_HEADER_PREFIX + "headers-truncated"), where

    if sent.key is None:
        assert copy_.key is None, where
    else:
        assert copy_.key == sent.key[: len(copy_.key)], where

    cut = header_values(copy_, TRUNCATED_HEADER)
    if sent.value is None:  # empty only where the client needs one of key or value
        assert copy_.value is None or (copy_.value == b"" and sent.key is None), where
        assert not cut, where
    elif cut:
        assert cut == [str(len(sent.value)).encode()], where
        assert len(copy_.value) < len(sent.value) and sent.value.startswith(copy_.value), where
    else:
        assert copy_.value == sent.value, where
    if sent.value is not None and len(sent.value) > MAX_DLQ_MESSAGE_BYTES:
        assert cut, f"a value too large for the topic is copied whole: {where}"
    return CopyCuts(value=sent.value is not None and bool(cut), headers=cut_headers)
