"""`payflow run sweeper`: every PAYFLOW_SWEEPER_INTERVAL_S, resolve due payments, cancel
orders past their payment window, run the gateway-refund job and, every
PAYFLOW_STATEMENT_SWEEP_S, decide charges only the gateway's statement shows; every
PAYFLOW_RETENTION_INTERVAL_S, prune the delivery tables (workers/runtime/retention.py). Any
number of replicas may run: each unit of work is claimed by a deterministic task key
(store.claim), and pruning skips rows another replica holds."""

import asyncio
import contextlib
from collections.abc import Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer

from infra.settings import Settings
from workers.gateway.http import gateway_session
from workers.gateway.registry import Gateways
from workers.late_payments import refund_job
from workers.runtime import outbox
from workers.runtime.db import create_pool
from workers.runtime.kafka import make_producer
from workers.runtime.outbox import Message
from workers.runtime.publisher import publish
from workers.runtime.retention import prune_forever
from workers.sweeper import checks, statement_sweep, store, window

log = structlog.get_logger()
BATCH = 100
REPUBLISH_AFTER_S = 10.0


async def sweep_once(
    pool: asyncpg.Pool, gateways: Gateways, settings: Settings, producer: AIOKafkaProducer
) -> int:
    """One pass; returns how many units of work it did. Events are in the outbox with their
    change and published after each commit."""
    # Anything a pass committed but could not publish (Kafka down) goes out on a later one.
    done = await republish(pool, producer, older_than_s=REPUBLISH_AFTER_S)
    async with pool.acquire() as conn:
        overdue = await store.expired_orders(conn, settings.payment_window_s, BATCH)
    for order_id in overdue:
        with _own_failure("order", order_id):
            done += await _published(producer, pool, await window.expire(pool, settings, order_id))
    async with pool.acquire() as conn:
        due = await store.due_payments(
            conn, settings.callback_grace_s, settings.payment_window_s, BATCH
        )
    for payment in due:
        with _own_failure("payment", payment.payment_id):
            await _published(producer, pool, await checks.check(pool, gateways, settings, payment))
            done += 1
    done += await refund_job.run_due(pool, gateways, settings, producer)
    if settings.statement_sweep_s > 0:  # 0: off
        with _own_failure("statement", "today"):
            swept = await statement_sweep.sweep(pool, gateways, settings, datetime.now(UTC))
            done += await _published(producer, pool, swept)
    return done


@contextlib.contextmanager
def _own_failure(kind: str, ref: str) -> Iterator[None]:
    """One unit's failure is logged and left for the next pass (its claim goes stale and is
    taken over); it never stops the others."""
    try:
        yield
    except Exception as exc:  # logged, retried next pass
        log.warning(
            "sweeper_unit_failed",
            kind=kind,
            ref=ref,
            error_class=type(exc).__name__,
            error=str(exc),
        )


async def _published(
    producer: AIOKafkaProducer, pool: asyncpg.Pool, messages: list[Message]
) -> int:
    if messages:
        await publish(producer, pool, messages)
    return 1 if messages else 0


async def republish(pool: asyncpg.Pool, producer: AIOKafkaProducer, older_than_s: float = 0) -> int:
    """What an earlier sweeper committed but did not get to publish (same event ids: the
    next stage's inbox drops a copy that did get through)."""
    async with pool.acquire() as conn:
        messages = await outbox.unpublished(conn, checks.PRODUCER, older_than_s, 1_000)
    if messages:
        await publish(producer, pool, messages)
    return len(messages)


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Sweep until `stop`. A failed pass (Postgres, Kafka or the gateway down) is logged
    and tried again at the next interval: the sweeper never gives up on due work."""
    async with AsyncExitStack() as stack:
        pool = await create_pool(settings, max_size=4)
        stack.push_async_callback(pool.close)
        http = await stack.enter_async_context(gateway_session())
        producer = make_producer(settings, client_id="payflow-sweeper")
        stack.push_async_callback(producer.stop)
        await producer.start()
        gateways = Gateways(settings, http)
        republished = await republish(pool, producer)
        log.info("sweeper_started", interval_s=settings.sweeper_interval_s, republished=republished)
        if settings.retention_interval_s > 0:  # 0: never
            pruner = asyncio.create_task(prune_forever(pool, settings))
            stack.push_async_callback(_cancelled, pruner)  # before the pool closes
        while not stop.is_set():
            try:
                await sweep_once(pool, gateways, settings, producer)
            except Exception as exc:  # logged, retried next interval
                log.warning("sweeper_pass_failed", error_class=type(exc).__name__, error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.sweeper_interval_s)
        log.info("sweeper_stopped")


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
