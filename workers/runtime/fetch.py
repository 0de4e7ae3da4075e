"""Polling a batch, surviving records the Kafka client cannot read.

aiokafka parses records lazily while handing them out. A record it cannot parse (a header
name that is not UTF-8, a bad CRC) raises from `getmany`, again on every call: the
partition would never move. Worse, records of other partitions drained in the same call
are dropped while their positions moved on. So after a failed poll every partition is
rewound to just after what was processed (nothing is skipped unprocessed), the readable
partitions are read on their own, and the broken one one record at a time up to the record
that cannot be read. The records before it are handed out as usual; once they are
processed, the unreadable one is dead-lettered by position (the client cannot give its
bytes) and passed over.
"""

import asyncio
import struct
import time
from collections.abc import Awaitable, Callable

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CorruptRecordException, KafkaError

from workers.runtime.kafka import Record

log = structlog.get_logger()
# What a record that cannot be parsed raises: aiokafka's own error, or (from its C
# extension) the decoding error itself.
UNREADABLE = (CorruptRecordException, UnicodeError, ValueError, IndexError, struct.error)
# Called with (partition, offset, error) for a record that cannot be read, once every record
# before it is processed; it must record the dead letter and commit offset + 1.
MAX_READ_ALONE = 500
OnUnreadable = Callable[[TopicPartition, int, BaseException], Awaitable[None]]


class Poller:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        processed: dict[TopicPartition, int],
        on_unreadable: OnUnreadable,
        stage: str,
        linger_s: float = 0.0,
        batch_max: int = 0,
    ) -> None:
        self.consumer, self.processed, self.stage = consumer, processed, stage
        self.linger_s, self.batch_max = linger_s, batch_max
        self.on_unreadable = on_unreadable
        # Unreadable records found, waiting for the records before them to be processed.
        self.pending: dict[TopicPartition, tuple[int, BaseException]] = {}

    async def poll(self) -> list[Record]:
        """The next batch, ordered by partition then offset; [] when there is none."""
        await self._pass_over_unreadable()
        try:
            batches = await self.consumer.getmany(timeout_ms=500)
            got = sum(len(records) for records in batches.values())
            if self.linger_s > 0 and 1 < got < self.batch_max // 4:
                await self._linger(batches, got)
        except UNREADABLE as exc:
            log.warning("unreadable_record_in_fetch", stage=self.stage, error=str(exc)[:300])
            await rewind(self.consumer, self.processed)
            return await self._around_unreadable()
        except (KafkaError, OSError) as exc:
            log.warning(
                "poll_failed",
                stage=self.stage,
                error_class=type(exc).__name__,
                error=str(exc)[:300],
            )
            await rewind(self.consumer, self.processed)
            await asyncio.sleep(1.0)
            return []
        return _ordered(batches)

    async def _linger(self, batches: dict[TopicPartition, list[Record]], got: int) -> None:
        """Up to linger_s more for a quarter of a batch, taking what comes as it comes (the
        client fetches a partition again only once what it fetched is taken)."""
        deadline = time.monotonic() + self.linger_s
        while got < self.batch_max // 4 and (left := deadline - time.monotonic()) > 0:
            more = await self.consumer.getmany(
                timeout_ms=max(1, int(left * 1000)), max_records=self.batch_max - got
            )
            for tp, records in more.items():
                batches.setdefault(tp, []).extend(records)
                got += len(records)

    async def _pass_over_unreadable(self) -> None:
        for tp, (offset, exc) in list(self.pending.items()):
            del self.pending[tp]
            if tp not in self.consumer.assignment():
                continue  # moved to another consumer, which will find it again
            if await self._next_offset(tp) == offset:  # everything before it is done
                await self.on_unreadable(tp, offset, exc)
                self.consumer.seek(tp, offset + 1)

    async def _next_offset(self, tp: TopicPartition) -> int:
        """The first offset of `tp` this group has not processed."""
        known = self.processed.get(tp)
        if known is None:
            known = await self.consumer.committed(tp)
        if known is None:
            known = (await self.consumer.beginning_offsets([tp]))[tp]
        return int(known)

    async def _around_unreadable(self) -> list[Record]:
        """Each partition read alone; the broken one up to its unreadable record."""
        found: list[Record] = []
        for tp in sorted(self.consumer.assignment(), key=lambda t: (t.topic, t.partition)):
            try:
                got = await self.consumer.getmany(tp, timeout_ms=100)
            except UNREADABLE:
                await rewind(self.consumer, self.processed, [tp])
                found.extend(await self._up_to_unreadable(tp))
                continue
            found.extend(got.get(tp, []))
        return found

    async def _up_to_unreadable(self, tp: TopicPartition) -> list[Record]:
        readable: list[Record] = []
        while len(readable) < MAX_READ_ALONE:
            try:
                got = await self.consumer.getmany(tp, timeout_ms=1_000, max_records=1)
            except UNREADABLE as exc:
                # One record at a time: the position is the record that failed.
                self.pending[tp] = (await self.consumer.position(tp), exc)
                return readable
            if not got.get(tp):
                return readable  # the fault was elsewhere, or is gone
            readable.extend(got[tp])
        return readable  # the next poll goes on from here


async def rewind(
    consumer: AIOKafkaConsumer,
    processed: dict[TopicPartition, int],
    partitions: list[TopicPartition] | None = None,
) -> None:
    """Partitions (all assigned by default) back to just after what this consumer processed
    (what the group committed, if this consumer has processed nothing of them)."""
    for tp in consumer.assignment() if partitions is None else partitions:
        offset = processed.get(tp)
        if offset is None:
            offset = await consumer.committed(tp)
        if offset is None:
            await consumer.seek_to_beginning(tp)  # a new group starts at the earliest
        else:
            consumer.seek(tp, offset)


def _ordered(batches: dict[TopicPartition, list[Record]]) -> list[Record]:
    return [r for tp in sorted(batches, key=lambda t: (t.topic, t.partition)) for r in batches[tp]]
