"""A stage's consumed offsets: which are processed, and when they are committed to Kafka.

An offset is processed once its batch's effects are in Postgres and its outputs acknowledged
by the broker. While busy, the processed offsets are committed at most once per interval: a
commit costs the broker about a millisecond of CPU and the stage a round trip
(docs/performance.md, step 45). They are committed at once when the stage is caught up,
gives partitions up or stops. A crash loses only the commits: those events are redelivered
and the inbox answers them from the outbox. Callers hold the stage's lock.
"""

import asyncio
import time
from collections.abc import Iterable

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

log = structlog.get_logger()


class Offsets:
    def __init__(self, stage: str, interval_s: float, final_timeout_s: float) -> None:
        self.stage, self.interval_s, self.final_timeout_s = stage, interval_s, final_timeout_s
        # Per partition, the next offset to process: everything before it is in Postgres.
        self.processed: dict[TopicPartition, int] = {}
        self._uncommitted: dict[TopicPartition, int] = {}
        self._committed_at = time.monotonic()

    @property
    def uncommitted(self) -> bool:
        return bool(self._uncommitted)

    async def done(
        self,
        consumer: AIOKafkaConsumer,
        offsets: dict[TopicPartition, int],
        *,
        at_once: bool = False,
    ) -> None:
        """Offsets whose records are processed; committed now if the interval is over."""
        self.processed.update(offsets)
        self._uncommitted.update(offsets)
        if at_once or time.monotonic() - self._committed_at >= self.interval_s:
            await self.flush(consumer)

    async def flush(self, consumer: AIOKafkaConsumer) -> None:
        """Commit every processed offset not committed yet."""
        offsets, self._uncommitted = self._uncommitted, {}
        self._committed_at = time.monotonic()
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # The group moved on (rebalance): the new owner re-reads these events and the
            # inbox makes that harmless. What we still own is tried again next time.
            log.warning(
                "commit_failed", stage=self.stage, error_class=type(exc).__name__, error=str(exc)
            )
            owned = consumer.assignment()
            for tp, offset in offsets.items():
                if tp in owned:
                    self._uncommitted.setdefault(tp, offset)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions given up: their positions are the next owner's."""
        for tp in partitions:
            self.processed.pop(tp, None)
            self._uncommitted.pop(tp, None)

    async def final_flush(self, consumer: AIOKafkaConsumer) -> None:
        """The last commit, bounded: a broker that is gone must not hold the stop (what it
        misses is redelivered, and the inbox makes that harmless)."""
        try:
            await asyncio.wait_for(self.flush(consumer), self.final_timeout_s)
        except (TimeoutError, OSError) as exc:
            log.warning("final_commit_failed", stage=self.stage, error_class=type(exc).__name__)
