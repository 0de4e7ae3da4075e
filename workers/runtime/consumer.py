"""The consume loop: poll a batch, process it with retries, publish, commit, repeat.

Offsets are committed only after the batch's effects are in Postgres and its outputs are
acknowledged by Kafka, explicitly and contiguously per partition: at most every
`commit_interval_ms`, and at once when the stage is caught up, gives partitions up or stops
(workers/runtime/offsets.py). A crash anywhere before the commit means redelivery, which the
inbox turns into a re-publish without a second effect.

No message can hold a partition: an event that fails is dead-lettered in its savepoint
(workers/runtime/batch.py); a batch that fails as a whole for a reason that is not an
outage is bisected until the message causing it is alone (workers/runtime/isolate.py);
a record the client cannot even read is passed over by position (workers/runtime/fetch.py).
During an outage the batch is kept, read again, and the stage reports itself unhealthy.
"""

import asyncio
import functools
import time
from collections.abc import Iterable

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from contracts.topics import namespace
from infra.settings import Settings
from workers.runtime import db, fetch, park, probes
from workers.runtime.dead_letters import DeadLetter
from workers.runtime.errors import is_transient
from workers.runtime.health import Health
from workers.runtime.isolate import Outage, isolate
from workers.runtime.kafka import Record, make_consumer
from workers.runtime.offsets import Offsets
from workers.runtime.processing import BatchProcessor
from workers.runtime.stage import Stage

log = structlog.get_logger()
UNREADABLE_DETAIL = (
    "the Kafka client cannot parse the record at (or just after) this offset: a header name "
    "that is not UTF-8, or a bad CRC; its bytes can be read with a raw tool such as kcat"
)


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Waits for the batch in flight and commits what was processed before giving up
    partitions, so the next owner starts exactly after what we processed."""

    def __init__(self, runner: "StageRunner", consumer: AIOKafkaConsumer) -> None:
        self._runner, self._consumer = runner, consumer

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        async with self._runner.lock:
            await self._runner.offsets.flush(self._consumer)
            self._runner.offsets.forget(revoked)
            log.info(
                "partitions_revoked", stage=self._runner.stage.name, partitions=_names(revoked)
            )

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        parts = list(assigned)
        self._runner.health.assigned(len(parts))
        log.info("partitions_assigned", stage=self._runner.stage.name, partitions=_names(parts))


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
        self.lock = asyncio.Lock()
        self.offsets = Offsets(
            stage.name, settings.commit_interval_ms / 1000, settings.connect_timeout_s
        )
        self.processor = BatchProcessor(stage, settings, pool, producer)

    async def run(self, stop: asyncio.Event) -> None:
        db.CALLER.set(self.stage.name)  # this task's round trips count for this stage
        consumer = make_consumer(
            self.settings,
            group_id=f"{namespace()}.{self.stage.name}",
            client_id=f"payflow-{self.stage.name}",
        )
        topics = [t.name for t in (self.stage.consumes, *self.stage.also_consumes)]
        consumer.subscribe(topics, listener=_CommitOnRevoke(self, consumer))
        await consumer.start()
        log.info("stage_started", stage=self.stage.name, topics=topics)
        lag_probe = asyncio.create_task(self._probe_lag(consumer, stop))
        poller = fetch.Poller(
            consumer,
            self.offsets.processed,
            self._unreadable(consumer),
            self.stage.name,
            linger_s=self.settings.batch_linger_ms / 1000,
            batch_max=self.settings.batch_max_records,
        )
        try:
            while not stop.is_set():
                records = await poller.poll()
                async with self.lock:
                    if records:
                        await self._handle(consumer, records)
                    elif self.offsets.uncommitted:  # caught up: the group's offsets are exact
                        await self.offsets.flush(consumer)
        finally:
            lag_probe.cancel()
            # Every finished batch is committed before leaving: the group loses nothing.
            async with self.lock:
                await self.offsets.final_flush(consumer)
            await consumer.stop()
            log.info("stage_stopped", stage=self.stage.name)

    async def _handle(self, consumer: AIOKafkaConsumer, records: list[Record]) -> None:
        started = time.monotonic()
        try:
            summary = await self.processor.process(records, self.settings.retry_budget_s)
        except Exception as exc:
            try:
                dead = await isolate(
                    records,
                    exc,
                    lambda part: self.processor.process(part, self.processor.short_budget_s),
                    lambda rec, err: park.park(
                        self.pool, self.producer, park.from_record(self.stage.name, rec, err, 1)
                    ),
                )
            except Outage as outage:
                self._keep_for_later(consumer, records, outage)
                await asyncio.sleep(1.0)
                return
            except Exception as bug:  # a defect below us: keep the stage alive and visible
                log.exception("batch_isolation_failed", stage=self.stage.name)
                self._keep_for_later(consumer, records, Outage(bug))
                await asyncio.sleep(1.0)
                return
            summary = {"processed": len(records) - dead, "isolated": dead}
            log.warning("batch_isolated", stage=self.stage.name, records=len(records), **summary)
        await self.offsets.done(
            consumer, {tp: last + 1 for tp, last in _last_offsets(records).items()}
        )
        self.health.progressed()
        self.processor.finished(records, started, summary)

    def _keep_for_later(
        self, consumer: AIOKafkaConsumer, records: list[Record], outage: Outage
    ) -> None:
        """An outage: read the same batch again, never commit past it; stay in the group."""
        error = f"{type(outage.cause).__name__}: {outage.cause}"[:500]
        log.error(
            "batch_kept_for_retry",
            stage=self.stage.name,
            records=len(records),
            error_class=type(outage.cause).__name__,
            error=error,
            transient=is_transient(outage.cause),
        )
        self.health.failing(error)
        for tp, first in _first_offsets(records).items():
            consumer.seek(tp, first)

    def _unreadable(self, consumer: AIOKafkaConsumer) -> fetch.OnUnreadable:
        async def on_unreadable(tp: TopicPartition, offset: int, exc: BaseException) -> None:
            dl = DeadLetter(
                consumer=self.stage.name,
                topic=tp.topic,
                partition=tp.partition,
                offset=offset,
                key=None,
                value=None,
                headers=(),
                reason_code="unreadable_record",
                detail=f"{UNREADABLE_DETAIL} ({exc})",
                attempts=1,
            )
            async with self.lock:
                await park.park(self.pool, self.producer, dl)
                await self.offsets.done(consumer, {tp: offset + 1}, at_once=True)

        return on_unreadable

    async def _probe_lag(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        """Lag from the broker's high-water marks on a timer, whatever the batches do."""
        interval = self.settings.health_probe_interval_s
        while not stop.is_set():
            measured: list[int] = []
            if await probes.probe(
                self.health.dependencies,
                "kafka",
                functools.partial(self._measure_lag, consumer, measured),
                self.settings.connect_timeout_s,
            ):
                self.health.observed_lag(measured[0])
            self.health.assigned(len(consumer.assignment()))
            await asyncio.sleep(interval)

    async def _measure_lag(self, consumer: AIOKafkaConsumer, into: list[int]) -> None:
        into.append(await probes.consumer_lag(consumer, self.offsets.processed))


def _names(tps: Iterable[TopicPartition]) -> list[str]:
    return [f"{tp.topic}[{tp.partition}]" for tp in tps]


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
