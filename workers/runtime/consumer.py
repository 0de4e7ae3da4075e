"""The consume loop: poll a batch, process it with retries, publish, commit, repeat.

Offsets are committed only after the batch's effects are in Postgres and its outputs are
acknowledged by Kafka, explicitly and contiguously per partition. A crash anywhere before
the commit means redelivery, which the inbox turns into a re-publish without a second effect.
"""

import asyncio
import time
from collections.abc import Iterable
from typing import Any, TypeAlias

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_delay,
    wait_random_exponential,
)

from contracts.topics import namespace
from infra.settings import Settings
from workers.runtime import metrics
from workers.runtime.batch import run_batch
from workers.runtime.errors import is_transient
from workers.runtime.faults import crash_point
from workers.runtime.health import Health
from workers.runtime.kafka import make_consumer
from workers.runtime.publisher import publish
from workers.runtime.stage import Stage

log = structlog.get_logger()
Record: TypeAlias = ConsumerRecord[Any, Any]


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Waits for the batch in flight (which commits its own offsets) before giving up
    partitions, so the next owner starts exactly after what we processed."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self._lock = lock

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        async with self._lock:
            log.info("partitions_revoked", partitions=[str(tp) for tp in revoked])

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        log.info("partitions_assigned", partitions=[str(tp) for tp in assigned])


class StageRunner:
    def __init__(
        self,
        stage: Stage,
        settings: Settings,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        health: Health,
    ) -> None:
        self.stage, self.settings, self.pool, self.producer = stage, settings, pool, producer
        self.health = health
        self._lock = asyncio.Lock()

    async def run(self, stop: asyncio.Event) -> None:
        consumer = make_consumer(
            self.settings,
            group_id=f"{namespace()}.{self.stage.name}",
            client_id=f"payflow-{self.stage.name}",
        )
        topics = [t.name for t in (self.stage.consumes, *self.stage.also_consumes)]
        consumer.subscribe(topics, listener=_CommitOnRevoke(self._lock))
        await consumer.start()
        log.info("stage_started", stage=self.stage.name, topics=topics)
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500)
                records = [
                    r for tp in sorted(batches, key=lambda t: t.partition) for r in batches[tp]
                ]
                if not records:
                    await self._observe_idle(consumer)
                    continue
                async with self._lock:
                    await self._handle(consumer, records)
        finally:
            # Every finished batch is already committed: leaving the group loses nothing.
            await consumer.stop()
            log.info("stage_stopped", stage=self.stage.name)

    async def _handle(self, consumer: AIOKafkaConsumer, records: list[Record]) -> None:
        name = self.stage.name
        metrics.CONSUMED.labels(name).inc(len(records))
        started = time.monotonic()
        try:
            await self._process_with_retries(records)
        except Exception as exc:
            # Retry budget spent on a transient fault: keep polling (so we stay in the
            # group) and read the same batch again instead of committing past it.
            log.error("batch_retry_budget_exhausted", stage=name, error=repr(exc))
            self.health.failing(repr(exc))
            for tp, first in _first_offsets(records).items():
                consumer.seek(tp, first)
            await asyncio.sleep(1.0)
            return
        await self._commit(consumer, records)
        metrics.LATENCY.labels(name).observe(time.monotonic() - started)
        self._observe_lag(consumer, records)
        self.health.progressed()

    async def _process_with_retries(self, records: list[Record]) -> None:
        name = self.stage.name
        retrying = AsyncRetrying(
            retry=retry_if_exception(is_transient),
            wait=wait_random_exponential(multiplier=0.2, max=5),
            stop=stop_after_delay(self.settings.retry_budget_s),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                n = attempt.retry_state.attempt_number
                if n > 1:
                    metrics.RETRIED.labels(name).inc()
                    log.warning("batch_retry", stage=name, attempt=n)
                result = await run_batch(self.pool, self.stage, records, n)
                crash_point("after_commit", name)
                await publish(self.producer, self.pool, result.messages)
                crash_point("after_publish", name)
        metrics.PROCESSED.labels(name).inc(result.processed)
        metrics.DUPLICATES.labels(name).inc(result.duplicates)
        metrics.PUBLISHED.labels(name).inc(len(result.messages) - len(result.dead))
        for dl in result.dead:
            metrics.DEAD_LETTERED.labels(name, dl.reason_code).inc()

    async def _commit(self, consumer: AIOKafkaConsumer, records: list[Record]) -> None:
        offsets = {tp: last + 1 for tp, last in _last_offsets(records).items()}
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # The group moved on (rebalance); the new owner re-reads these events and the
            # inbox makes that harmless.
            log.warning("commit_failed", stage=self.stage.name, error=repr(exc))

    def _observe_lag(self, consumer: AIOKafkaConsumer, records: list[Record]) -> None:
        lag = 0
        for tp, last in _last_offsets(records).items():
            high = consumer.highwater(tp)
            if high is not None:
                lag += max(0, high - last - 1)
        metrics.LAG.labels(self.stage.name).set(lag)
        self.health.lag = lag

    async def _observe_idle(self, consumer: AIOKafkaConsumer) -> None:
        lag = 0
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is not None:
                lag += max(0, high - await consumer.position(tp))
        metrics.LAG.labels(self.stage.name).set(lag)
        self.health.lag = lag
        self.health.idle_check()


def _first_offsets(records: list[Record]) -> dict[TopicPartition, int]:
    first: dict[TopicPartition, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        first[tp] = min(first.get(tp, r.offset), r.offset)
    return first


def _last_offsets(records: list[Record]) -> dict[TopicPartition, int]:
    last: dict[TopicPartition, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        last[tp] = max(last.get(tp, r.offset), r.offset)
    return last
