"""One batch attempt after another: apply, publish, retry transient failures in a budget.

A transient failure (an outage, a deadlock, a lock held elsewhere) retries the whole batch
with backoff and jitter until the budget is spent; anything else is raised at once, for the
caller to isolate the message that causes it. Each retry is a log line with the error's
class and message; each finished batch is one line with its counts.
"""

import time

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    wait_random_exponential,
)

from infra.settings import Settings
from workers.runtime import metrics, park
from workers.runtime.batch import BatchResult, run_batch
from workers.runtime.errors import error_class, is_deadlock, is_transient
from workers.runtime.faults import crash_point
from workers.runtime.kafka import Record
from workers.runtime.publisher import publish
from workers.runtime.stage import Stage

log = structlog.get_logger()


class BatchProcessor:
    # Parts of a batch being bisected get a few quick attempts, not the whole budget each.
    short_budget_s = 3.0

    def __init__(
        self, stage: Stage, settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
    ) -> None:
        self.stage, self.settings, self.pool, self.producer = stage, settings, pool, producer

    async def process(self, records: list[Record], budget_s: float) -> dict[str, int]:
        """Apply and publish `records`; raise what could not be retried away."""
        name = self.stage.name
        retrying = AsyncRetrying(
            retry=retry_if_exception(is_transient),
            wait=wait_random_exponential(multiplier=0.2, max=5),
            stop=stop_after_delay(budget_s),
            reraise=True,
            before_sleep=self._log_retry,
        )
        result = BatchResult()
        try:
            async for attempt in retrying:
                with attempt:
                    n = attempt.retry_state.attempt_number
                    result = await run_batch(self.pool, self.stage, records, n)
                    crash_point("after_commit", name, (r.key for r in records))
                    await publish(self.producer, self.pool, result.messages)
                    crash_point("after_publish", name, (r.key for r in records))
        except Exception as exc:
            metrics.BATCH_FAILURES.labels(name, error_class(exc)).inc()
            log.warning(
                "batch_failed",
                stage=name,
                records=len(records),
                error_class=error_class(exc),
                error=str(exc)[:500],
                transient=is_transient(exc),
            )
            raise
        for dl in result.dead:  # once, for the attempt that committed
            park.logged(dl)
        metrics.PROCESSED.labels(name).inc(result.processed)
        metrics.DUPLICATES.labels(name).inc(result.duplicates)
        metrics.PUBLISHED.labels(name).inc(len(result.messages) - len(result.dead))
        return {
            "processed": result.processed,
            "duplicates": result.duplicates,
            "dead_lettered": len(result.dead),
            "published": len(result.messages) - len(result.dead),
        }

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if exc is None:
            return
        name, cls = self.stage.name, error_class(exc)
        metrics.RETRIED.labels(name, cls).inc()
        if is_deadlock(exc):
            metrics.DEADLOCKS.labels(name).inc()
        log.warning(
            "batch_retry",
            stage=name,
            attempt=state.attempt_number,
            error_class=cls,
            error=str(exc)[:500],
            deadlock=is_deadlock(exc),
            next_in_s=round(state.upcoming_sleep, 2),
        )

    def finished(self, records: list[Record], started: float, summary: dict[str, int]) -> None:
        name = self.stage.name
        elapsed = time.monotonic() - started
        metrics.CONSUMED.labels(name).inc(len(records))
        metrics.LATENCY.labels(name).observe(elapsed)
        partitions = sorted({r.partition for r in records})
        log.info(
            "batch_done",
            stage=name,
            records=len(records),
            partitions=partitions,
            ms=round(elapsed * 1000, 1),
            **summary,
        )
