"""The phases of a run: the drain at saturation and the latency at a fixed load (measured),
and a history drained before them (not measured).

Drain: every order is published before the workers start, so the pipeline is saturated
from its first batch; the time runs from order build's first handled order to the last
order reaching a final state, both stamped by Postgres. Latency: orders are offered at a
fixed rate to running workers, each stamped when sent; its latency ends when Postgres
stamps its final state (one host, one clock).
"""

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from contracts.codec import encode
from contracts.topics import ORDERS_SUBMITTED
from workers.bench import orders, store
from workers.bench.pipeline import Run, start
from workers.cli.connect import start_producer

COUNT_EVERY_S = 0.5
MAX_COUNT_EVERY_S = 5.0


class BenchTimeout(Exception):
    """Orders did not all reach a final state in time."""


async def publish(
    run: Run,
    first: int,
    count: int,
    *,
    hot: bool,
    rate: float | None = None,
    prefix: str | None = None,
) -> dict[str, float]:
    """Publish orders first..first+count-1 (ids under `prefix`, by default the run's own);
    at `rate` orders/s when given, else at once. Returns order id -> wall-clock time sent."""
    prefix = prefix or run.run_id
    rng = random.Random(f"{prefix}:{first}")
    producer = await start_producer(run.settings, "payflow-bench")
    sent: dict[str, float] = {}
    try:
        futures = []
        t0 = time.time()
        for n in range(count):
            i = first + n
            event = orders.bench_order(prefix, i, rng, hot=hot)
            if rate:
                ahead = t0 + n / rate - time.time()
                if ahead > 0:
                    await asyncio.sleep(ahead)
            sent[event.correlation_id] = time.time()
            futures.append(
                await producer.send(
                    ORDERS_SUBMITTED.name, encode(event), key=event.correlation_id.encode()
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return sent


async def wait_final(
    run: Run,
    total: int,
    timeout_s: float,
    on_start: Callable[[], Awaitable[None]] | None = None,
    prefix: str | None = None,
) -> None:
    """Until `total` orders of the run (or under `prefix`) are final; `on_start` runs once
    when order build handles its first order since the run's history."""
    deadline = time.monotonic() + timeout_s
    started, next_count, done = on_start is None, 0.0, 0
    last: tuple[float, int] | None = None  # the previous count: when, and how many were final
    while True:
        if not started and await store.first_started(run.conn, run.history_end) is not None:
            assert on_start is not None
            await on_start()
            started = True
        # The count reads every order of the run (a sequential scan, 11-14 ms with 10,000
        # orders): not 10 times a second, or the observer weighs on what it measures. The
        # next count comes when, at the pace of the last two, most of the rest should be
        # final; the times themselves are stamped by Postgres, so a late count moves only
        # when this returns, never what it measured.
        now = time.monotonic()
        if started and now >= next_count:
            done = await store.final_count(run.conn, prefix or run.run_id)
            if done >= total:
                return
            next_count = now + _until_next_count(last, now, done, total)
            last = (now, done)
        exited = run.children.first_exited()
        if exited:
            raise BenchTimeout(f"{run.label}: {exited}")
        if time.monotonic() > deadline:
            raise BenchTimeout(
                f"{run.label}: {done} of {total} orders final after {timeout_s:.0f} s "
                f"(worker logs in {run.children.log_dir})"
            )
        await asyncio.sleep(0.1)


def _until_next_count(last: tuple[float, int] | None, now: float, done: int, total: int) -> float:
    """Seconds to the next count: COUNT_EVERY_S, or longer when the pace says the rest
    will take long (at most MAX_COUNT_EVERY_S, three fifths of the expected wait)."""
    if last is None or done <= last[1] or now <= last[0]:
        return COUNT_EVERY_S
    pace = (done - last[1]) / (now - last[0])
    return min(MAX_COUNT_EVERY_S, max(COUNT_EVERY_S, 0.6 * (total - done) / pace))


async def history(run: Run, count: int, timeout_s: float, *, hot: bool) -> dict[str, Any]:
    """The run's past: `count` orders through the pipeline, then every process
    stopped (each stage commits its offsets and leaves its group) before the measured orders
    are published. Not measured beyond its own duration."""
    prefix = store.history_id(run.run_id)
    started = time.monotonic()
    await publish(run, 0, count, hot=hot, prefix=prefix)
    await start(run)
    await wait_final(run, count, timeout_s, prefix=prefix)
    await run.children.stop(timeout_s=30.0)
    run.history_end = await store.now(run.conn)
    await run.conn.execute("ANALYZE")  # as autovacuum would have, long before, in a real one
    return {
        "orders": count,
        "seconds": round(time.monotonic() - started, 1),
        "outcomes": await store.outcome_counts(run.conn, prefix),
        "database_mib": await store.database_mib(run.conn),
    }


async def drain_span(run: Run) -> float:
    """Seconds from the first handled order to the last final one (Postgres clock)."""
    first = await store.first_started(run.conn, run.history_end)
    finals = await store.final_times(run.conn, run.run_id)
    assert first is not None and finals
    return (max(finals.values()) - first).total_seconds()


def latencies_ms(sent: dict[str, float], finals: dict[str, datetime]) -> list[float]:
    return sorted(max(0.0, (finals[o].timestamp() - t) * 1000) for o, t in sent.items())


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return 0.0
    rank = max(1, round(p / 100 * len(sorted_values) + 0.5 - 1e-9))
    return sorted_values[min(rank, len(sorted_values)) - 1]


async def scrape(run: Run) -> dict[str, dict[str, float]]:
    """Counters of the workers' /metrics, summed over their processes: name -> stage -> value."""
    out: dict[str, dict[str, float]] = {}
    async with aiohttp.ClientSession() as http:
        for url in run.metrics_urls():
            async with http.get(url) as resp:
                text = await resp.text()
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.name.endswith("_total"):
                        stage = sample.labels.get("stage", "")
                        per = out.setdefault(sample.name, {})
                        per[stage] = per.get(stage, 0.0) + sample.value
    return out
