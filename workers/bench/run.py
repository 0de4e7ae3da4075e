"""`payflow bench`: how fast payflow drains orders, and how that compares, in one run.

After a warm-up of the broker (messages through the relay's hops, not measured), runs, each
on its own database and topics: payflow at saturation (drain rate, CPU, memory,
round trips, deadlocks) followed by a latency phase at a fixed share of that rate; the
same hops relayed by bare aiokafka (no database); payflow with batches of one; and with
`--hot_merchant`, payflow with 90 % of the orders going to one merchant. The audit must be
clean after every payflow run. With `--history N`, the uniform and hot-merchant runs first
drain N orders through the same processes, unmeasured, and restart them: the measured
drain then starts on a database that has a past, as a deployed one does.
"""

import random
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contracts.codec import encode
from infra.settings import Settings
from workers.bench import orders, phases, procstats, store
from workers.bench.pipeline import Run, bench_run, start
from workers.bench.relay import relay_run
from workers.ops.audit import run_audit
from workers.stage_names import STAGE_NAMES


@dataclass(frozen=True)
class Options:
    orders: int = 10_000
    load: float = 0.5  # latency phase: this share of the measured drain rate
    latency_orders: int = 0  # 0: enough for about 20 s at that load, at most `orders`
    batch1_orders: int = 300
    hot_merchant: bool = False
    baselines: bool = True
    keep: bool = False
    timeout_s: float = 1_800.0
    layout: str = "processes"
    history: int = 0  # orders drained before the measured ones, on the same database


WARMUP_MESSAGES = 5_000  # relayed before the first measurement (at most --orders)


def _run_id(label: str) -> str:
    # Names a database and a topic namespace: lower case, unique even for parallel runs.
    return f"bench{label}{datetime.now(UTC):%H%M%S}{secrets.token_hex(2)}"


async def _history(run: Run, opts: Options, say: Any, *, hot: bool) -> dict[str, Any] | None:
    """The run's past (`--history`), if one was asked for."""
    if not opts.history:
        return None
    say(f"{run.label}: a history of {opts.history} orders first (not measured)")
    return await phases.history(run, opts.history, opts.timeout_s, hot=hot)


async def _drain(run: Run, count: int, opts: Options, *, hot: bool) -> dict[str, Any]:
    """Publish, start the workers, measure until every order is final."""
    await phases.publish(run, 0, count, hot=hot)
    deadlocks_before = await store.deadlocks(run.conn)
    wal_before = await store.wal(run.conn)
    marks: dict[str, Any] = {}

    async def begin() -> None:
        marks["cpu"] = procstats.snapshot(_groups(run))

    await start(run)
    await phases.wait_final(run, count, opts.timeout_s, on_start=begin)
    if "cpu" not in marks:  # everything was final before the first poll saw it start
        await begin()
    cpu = procstats.usage(marks["cpu"], procstats.snapshot(_groups(run)))
    # A stage's counters start at zero with its process, which starts with this drain (its
    # start-up statements count as "other"): nothing to subtract. A scrape taken once the
    # first order was seen came late in a small run and took order build's batch with it.
    metrics = await phases.scrape(run)
    seconds = await phases.drain_span(run)
    trips = metrics.get("payflow_pg_roundtrips_total", {})
    deadlocks = await store.deadlocks(run.conn) - deadlocks_before
    wal = await store.wal(run.conn)
    retried = metrics.get("payflow_deadlocks_total", {})
    return {
        "orders": count,
        "seconds": round(seconds, 3),
        "orders_per_s": round(count / seconds, 1) if seconds > 0 else 0.0,
        "cpu_ms_per_order": {g: round(u.cpu_s * 1000 / count, 3) for g, u in cpu.items()},
        "peak_rss_mib": {g: round(u.peak_rss_kib / 1024, 1) for g, u in cpu.items()},
        "roundtrips_per_order": {
            s: round(trips.get(s, 0.0) / count, 2) for s in STAGE_NAMES if s != "wallet"
        },
        # Postgres's writes, which do not drift with the machine's speed as CPU does.
        "wal_per_order": {k: round((v - wal_before[k]) / count, 1) for k, v in wal.items()},
        "deadlocks": deadlocks,
        "deadlock_retries": int(sum(retried.values())),
        "outcomes": await store.outcome_counts(run.conn, run.run_id),
    }


def _groups(run: Run) -> dict[str, list[int]]:
    return {
        "workers": run.worker_pids,
        "simulator": [run.simulator_pid],
        **procstats.service_pids(run.settings),
    }


async def _latency(run: Run, rate: float, count: int, opts: Options) -> dict[str, Any]:
    first = opts.orders  # after the drain's orders
    sent = await phases.publish(run, first, count, hot=False, rate=rate)
    await phases.wait_final(run, first + count, opts.timeout_s)
    finals = await store.final_times(run.conn, run.run_id)
    values = phases.latencies_ms(sent, finals)
    return {
        "offered_orders_per_s": round(rate, 1),
        "orders": count,
        "p50_ms": round(phases.percentile(values, 50), 1),
        "p95_ms": round(phases.percentile(values, 95), 1),
        "p99_ms": round(phases.percentile(values, 99), 1),
    }


async def _audit(run: Run) -> dict[str, Any]:
    # Tables filled seconds ago have no statistics yet: without them the audit's joins can
    # pick nested loops over tens of thousands of rows (minutes instead of a second).
    await run.conn.execute("ANALYZE")
    result = await run_audit(run.conn, run.settings, liveness=False)
    return {"ok": result["ok"], "violations": result["violations"][:20]}


async def _warm_broker(base: Settings, opts: Options, say: Any) -> dict[str, Any]:
    """Messages through the relay's hops before anything is measured. A broker started
    minutes before is still compiling its hot code: the first drain on it cost Kafka 0.43-0.50
    ms of CPU per order and the next ones 0.26-0.30 (docs/performance.md, step 43), and the
    relay, measured later, ran on the warmer broker."""
    count = min(WARMUP_MESSAGES, opts.orders)
    say(f"warm-up: {count} messages through the relay's hops (not measured)")
    started = time.monotonic()
    message = encode(orders.bench_order(_run_id("w"), 0, random.Random(0), hot=False))
    await relay_run(base, message, count, timeout_s=opts.timeout_s)
    return {"messages": count, "seconds": round(time.monotonic() - started, 1)}


async def bench(base: Settings, opts: Options, say: Any) -> dict[str, Any]:
    started = time.monotonic()
    out: dict[str, Any] = {"orders": opts.orders, "layout": opts.layout}
    out["warmup"] = await _warm_broker(base, opts, say)
    run_id = _run_id("u")
    # The latency phase adds its orders to the same run: seed coupons for both.
    latency_cap = opts.latency_orders or opts.orders
    async with bench_run(
        base,
        "payflow",
        run_id,
        opts.orders + latency_cap,
        keep=opts.keep,
        extra={},
        layout=opts.layout,
        history=opts.history,
    ) as run:
        if (past := await _history(run, opts, say, hot=False)) is not None:
            out["history"] = past
        say(f"payflow: draining {opts.orders} orders")
        drain = await _drain(run, opts.orders, opts, hot=False)
        out["payflow"] = drain
        rate = max(1.0, drain["orders_per_s"] * opts.load)
        count = opts.latency_orders or min(opts.orders, max(100, int(rate * 20)))
        say(f"payflow: latency of {count} orders at {rate:.0f} orders/s")
        out["latency"] = await _latency(run, rate, count, opts)
        out["audit"] = await _audit(run)
        message = encode(orders.bench_order(run_id, 0, random.Random(0), hot=False))
    if opts.hot_merchant:
        # Right after the uniform run, before the baselines: this machine's speed drifts over
        # minutes, and the two drains are compared with each other.
        async with bench_run(
            base,
            "hot",
            _run_id("h"),
            opts.orders,
            keep=opts.keep,
            extra={},
            layout=opts.layout,
            history=opts.history,
        ) as run:
            past = await _history(run, opts, say, hot=True)
            say(f"hot merchant: draining {opts.orders} orders, 90 % to {orders.HOT_MERCHANT}")
            out["hot_merchant"] = await _drain(run, opts.orders, opts, hot=True)
            if past is not None:
                out["hot_merchant"]["history"] = past
            out["hot_merchant"]["audit_ok"] = (await _audit(run))["ok"]
    if opts.baselines:
        say(f"relay: {opts.orders} messages through the same hops, no database")
        relay = await relay_run(base, message, opts.orders, timeout_s=opts.timeout_s)
        out["relay"] = {
            "orders_per_s": round(relay.orders_per_s, 1),
            "seconds": round(relay.elapsed_s, 3),
        }
        n1 = min(opts.batch1_orders, opts.orders)
        async with bench_run(
            base,
            "batch1",
            _run_id("b"),
            n1,
            keep=opts.keep,
            extra={"PAYFLOW_BATCH_MAX_RECORDS": "1"},
            layout=opts.layout,
        ) as run:
            say(f"payflow with batches of one: draining {n1} orders")
            out["batch1"] = await _drain(run, n1, opts, hot=False)
            out["batch1"]["audit_ok"] = (await _audit(run))["ok"]
    out["elapsed_s"] = round(time.monotonic() - started, 1)
    return summary(out)


def summary(out: dict[str, Any]) -> dict[str, Any]:
    """The headline figures on top, the details under their run's name."""
    drain = out["payflow"]
    relay = out.get("relay", {}).get("orders_per_s")
    audits = [
        out["audit"]["ok"],
        out.get("batch1", {}).get("audit_ok", True),
        out.get("hot_merchant", {}).get("audit_ok", True),
    ]
    head: dict[str, Any] = {
        "orders_per_s": drain["orders_per_s"],
        "p50_ms": out["latency"]["p50_ms"],
        "p95_ms": out["latency"]["p95_ms"],
        "p99_ms": out["latency"]["p99_ms"],
        "cpu_ms_per_order": drain["cpu_ms_per_order"],
        "relay_orders_per_s": relay,
        "ratio_vs_relay": round(drain["orders_per_s"] / relay, 3) if relay else None,
        "batch1_orders_per_s": out.get("batch1", {}).get("orders_per_s"),
        "roundtrips_per_order": drain["roundtrips_per_order"],
        "deadlocks": drain["deadlocks"]
        + out.get("batch1", {}).get("deadlocks", 0)
        + out.get("hot_merchant", {}).get("deadlocks", 0),
        "audit_ok": all(audits),
    }
    if "hot_merchant" in out:
        hot = out["hot_merchant"]["orders_per_s"]
        head["hot_merchant_orders_per_s"] = hot
        head["hot_within_20_pct"] = (
            bool(drain["orders_per_s"]) and hot >= 0.8 * drain["orders_per_s"]
        )
        head["hot_vs_uniform"] = (
            round(hot / drain["orders_per_s"], 3) if drain["orders_per_s"] else None
        )
    return head | {"details": out}
