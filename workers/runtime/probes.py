"""Probes on a timer, independent of whether batches succeed: is Postgres (and Redis)
answering, and how far behind the broker's high-water marks is each consumer."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from redis.asyncio import Redis

from workers.runtime.health import Dependencies

log = structlog.get_logger()


async def probe(
    deps: Dependencies, name: str, check: Callable[[], Awaitable[Any]], timeout_s: float
) -> bool:
    """Run one check; record whether the dependency answered. Logs only on a change."""
    was = deps.errors.get(name, None)
    try:
        await asyncio.wait_for(check(), timeout_s)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
        if was is None:
            log.error("dependency_unreachable", dependency=name, error=error)
        deps.failed(name, error)
        return False
    if was is not None:
        log.info("dependency_reachable_again", dependency=name)
    deps.answered(name)
    return True


async def probe_services(
    deps: Dependencies,
    pool: asyncpg.Pool,
    redis: Redis | None,
    interval_s: float,
    timeout_s: float,
    stop: asyncio.Event,
) -> None:
    """Postgres and Redis, every `interval_s` until `stop`."""

    async def postgres() -> None:
        await pool.fetchval("SELECT 1", timeout=timeout_s)

    async def redis_ping() -> None:
        assert redis is not None
        await redis.ping()

    while not stop.is_set():
        await probe(deps, "postgres", postgres, timeout_s)
        if redis is not None:
            await probe(deps, "redis", redis_ping, timeout_s)
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
        except TimeoutError:
            pass


async def consumer_lag(consumer: AIOKafkaConsumer, processed: dict[TopicPartition, int]) -> int:
    """Messages between what this consumer processed (else what its group committed) and the
    broker's end of each assigned partition (the last stable offset under read_committed)."""
    assigned = list(consumer.assignment())
    if not assigned:
        return 0
    ends = await consumer.end_offsets(assigned)
    done: dict[TopicPartition, int] = {}
    for tp in assigned:
        offset = processed.get(tp)
        if offset is None:
            offset = await consumer.committed(tp)
        if offset is not None:
            done[tp] = offset
    never = [tp for tp in assigned if tp not in done]
    if never:  # nothing committed yet: everything from the start is lag (one request)
        done.update(await consumer.beginning_offsets(never))
    return sum(max(0, ends[tp] - done[tp]) for tp in assigned)
