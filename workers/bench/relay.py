"""The bare aiokafka relay: payflow's five hops with no database, the floor payflow is held to.

Each hop is a consumer that reads a batch, re-publishes every record to the next topic, waits
for the broker to have them and commits, exactly like a payflow stage minus Postgres: the same
producer and consumer settings (workers/runtime/kafka.py), the same batch size and partition
count, one shared producer and one event loop as in `payflow run all`. A counter at the end
sees every message once (by key) and stops the clock.

The clock covers relaying only: every consumer joins its group first, hop 0's partitions are
paused while all `count` messages are published to it, and timing starts when they resume.
"""

import asyncio
import time
import uuid
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from contracts.topics import namespace
from infra.services.kafka import delete_topics, ensure_topics
from infra.settings import Settings
from workers.runtime.kafka import make_consumer, make_producer
from workers.runtime.outbox import Message
from workers.runtime.produce import deliver_all

log = structlog.get_logger()
POLL_TIMEOUT_MS = 500  # as payflow's poller (workers/runtime/fetch.py)
STOP_GRACE_S = 10.0


class RelayError(RuntimeError):
    """The relay could not move every message (timeout, broker error); the message says why."""


@dataclass(frozen=True)
class RelayResult:
    count: int
    elapsed_s: float
    orders_per_s: float  # a rate, not money


def relay_topics(run_id: str, hops: int) -> list[str]:
    """hops + 1 topics: h0 is published to, h<hops> is where the counter reads."""
    return [f"{namespace()}.bench-relay.{run_id}.h{i}" for i in range(hops + 1)]


async def relay_run(
    settings: Settings,
    message: bytes,
    count: int,
    hops: int = 5,
    *,
    timeout_s: float = 300.0,
    run_id: str | None = None,
) -> RelayResult:
    """Relay `count` copies of `message` through `hops` hops; raise RelayError if that does not
    finish within timeout_s (set-up and publishing included). Its topics are deleted after."""
    if count < 1 or hops < 1:
        raise ValueError(f"count and hops must be at least 1, got count={count} hops={hops}")
    topics = relay_topics(run_id or uuid.uuid4().hex[:8], hops)
    await ensure_topics(
        settings.kafka_bootstrap,
        dict.fromkeys(topics, settings.topic_partitions),
        connect_timeout_s=settings.connect_timeout_s,
    )
    try:
        return await _Relay(settings, topics, count).run(message, time.monotonic() + timeout_s)
    finally:
        await drop_topics(settings, topics)


class _Joined(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tells when the group coordinator (which joins in the background) assigned partitions."""

    def __init__(self) -> None:
        self.assigned = asyncio.Event()

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        pass

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.assigned.set()


class _Relay:
    def __init__(self, settings: Settings, topics: list[str], count: int) -> None:
        self.settings, self.topics, self.count = settings, topics, count
        self.stop = asyncio.Event()
        self.seen: set[bytes] = set()
        self.finished = asyncio.Event()

    async def run(self, message: bytes, deadline: float) -> RelayResult:
        producer = make_producer(self.settings, "payflow-bench-relay")
        consumers = [
            make_consumer(self.settings, f"{topic}.group", f"payflow-bench-relay-{i}")
            for i, topic in enumerate(self.topics)
        ]
        joined = [_Joined() for _ in consumers]
        for consumer, topic, listener in zip(consumers, self.topics, joined, strict=True):
            consumer.subscribe([topic], listener=listener)
        tasks: list[asyncio.Task[None]] = []
        try:
            await _bounded(producer.start(), deadline, "starting the producer")
            for consumer in consumers:
                await _bounded(consumer.start(), deadline, "starting a consumer")
            # Each group has one member, which gets every partition of its topic.
            joins = asyncio.gather(*(j.assigned.wait() for j in joined))
            await _bounded(joins, deadline, "joining the consumer groups")
            hop0 = consumers[0]
            hop0.pause(*hop0.assignment())
            await _bounded(self._publish(producer, message), deadline, "publishing to hop 0")
            started = time.monotonic()
            hop0.resume(*hop0.assignment())
            tasks = [
                asyncio.create_task(self._hop(consumer, producer, target))
                for consumer, target in zip(consumers, self.topics[1:], strict=False)
            ]
            tasks.append(asyncio.create_task(self._count(consumers[-1])))
            await self._until_finished(tasks, deadline)
            elapsed = time.monotonic() - started
        finally:
            await self._shut_down(tasks, consumers, producer)
        return RelayResult(self.count, elapsed, self.count / elapsed if elapsed > 0 else 0.0)

    async def _publish(self, producer: AIOKafkaProducer, message: bytes) -> None:
        hop0 = self.topics[0]
        messages = [Message(hop0, f"relay-{i}".encode(), message) for i in range(self.count)]
        await deliver_all(producer, messages)

    async def _hop(
        self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, target: str
    ) -> None:
        """One stage's loop without the database: poll, publish all, await the sends, commit."""
        max_records = self.settings.batch_max_records
        while not self.stop.is_set():
            batches = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS, max_records=max_records)
            if not batches:
                continue
            # Sent as payflow's stages send their outputs (runtime/produce.py).
            await deliver_all(
                producer,
                [Message(target, r.key, r.value) for records in batches.values() for r in records],
            )
            await consumer.commit({tp: records[-1].offset + 1 for tp, records in batches.items()})

    async def _count(self, consumer: AIOKafkaConsumer) -> None:
        # Not a hop: payflow's bench reads final states elsewhere, so no commit here.
        while not self.stop.is_set():
            batches = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
            self.seen.update(r.key for records in batches.values() for r in records)
            if len(self.seen) >= self.count:
                self.finished.set()
                return

    async def _until_finished(self, tasks: list[asyncio.Task[None]], deadline: float) -> None:
        waiter = asyncio.create_task(self.finished.wait())
        try:
            done, _ = await asyncio.wait(
                [waiter, *tasks],
                timeout=max(0.0, deadline - time.monotonic()),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            waiter.cancel()
        if self.finished.is_set():
            return
        for task in done:
            if task is not waiter and (exc := task.exception()) is not None:
                raise RelayError(f"relay hop failed: {type(exc).__name__}: {exc}") from exc
        raise RelayError(
            f"relay did not finish in time: {len(self.seen)} of {self.count} messages "
            f"reached the last hop"
        )

    async def _shut_down(
        self,
        tasks: list[asyncio.Task[None]],
        consumers: list[AIOKafkaConsumer],
        producer: AIOKafkaProducer,
    ) -> None:
        self.stop.set()  # each loop ends after its current poll (POLL_TIMEOUT_MS at most)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for consumer in consumers:
            await consumer.stop()
        await producer.stop()


async def _bounded(aw: Awaitable[object], deadline: float, what: str) -> None:
    try:
        await asyncio.wait_for(aw, max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        raise RelayError(f"relay timed out {what}") from None


async def drop_topics(settings: Settings, topics: Iterable[str]) -> None:
    """Best effort: the measurement stands even if its scratch topics stay behind."""
    names = list(topics)
    try:
        await delete_topics(
            settings.kafka_bootstrap, names, connect_timeout_s=settings.connect_timeout_s
        )
    except Exception as exc:
        log.warning("bench_topics_not_deleted", topics=names, error=f"{type(exc).__name__}: {exc}")
