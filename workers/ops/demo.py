"""`payflow demo`: services, schema, seed data, workers, then orders through every stage.

Ends with a summary table (or one JSON object with --json) and exits 0 only when every
order reached a final state and the audit is clean.
"""

import asyncio
import json
import random
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from contracts.codec import encode
from contracts.topics import ORDERS_SUBMITTED
from infra.services import manager
from infra.settings import Settings
from workers.cli.aio import in_daemon_thread, stop_if_signalled
from workers.cli.connect import start_producer
from workers.cli.setup import migrate_all
from workers.ops import demo_orders, progress, seed
from workers.ops.audit import run_audit
from workers.ops.processes import Children, ensure_pipeline
from workers.runtime.db import connect


async def prepare(settings: Settings, run_id: str, orders: int) -> None:
    conn = await connect(settings)
    try:
        async with conn.transaction():
            await seed.seed_catalogue(conn)
            for n in range(1, demo_orders.BUYERS + 1):
                # Some buyers get little, so wallet-only orders can fail for lack of funds.
                amount = 0 if n % 7 == 0 else 2_000 if n % 5 == 0 else 60_000
                await seed.top_up(
                    conn, seed.buyer_id(n), amount, f"seed:{run_id}:{n}"
                ) if amount else None
            for i in range(orders):
                if demo_orders.wants_coupon(i):
                    buyer = seed.buyer_id(1 + i % demo_orders.BUYERS)
                    await seed.grant_coupon(
                        conn, demo_orders.coupon_grant_id(run_id, i), "cp-rate", buyer
                    )
    finally:
        await conn.close()


async def publish_orders(settings: Settings, run_id: str, orders: int) -> int:
    """Publish the run's orders; every 20th is sent twice (redelivery must be harmless)."""
    rng = random.Random(run_id)
    producer = await start_producer(settings, "payflow-demo")
    sent = 0
    try:
        futures = []
        for i in range(orders):
            event = demo_orders.demo_order(run_id, i, rng)
            copies = 2 if i % 20 == 0 else 1
            for _ in range(copies):
                futures.append(
                    await producer.send(
                        ORDERS_SUBMITTED.name, encode(event), key=event.correlation_id.encode()
                    )
                )
                sent += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return sent


async def watch(
    settings: Settings,
    run_id: str,
    orders: int,
    since: datetime,
    timeout_s: float,
    console: Console | None,
) -> dict[str, int]:
    conn = await connect(settings)
    deadline = time.monotonic() + timeout_s
    try:
        bars = Progress(
            TextColumn("{task.description:<18}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            disable=console is None,
            transient=False,
        )
        with bars:
            tasks = {
                name: bars.add_task(name, total=1)
                for name in (
                    "order build",
                    "fund freeze",
                    "gateway request",
                    "callback handling",
                    "settlement",
                    "final state",
                )
            }
            while True:
                counts = await progress.outcomes(conn, run_id)
                for sc in await progress.stage_counts(conn, since, orders, run_id):
                    bars.update(tasks[sc.stage], completed=sc.done, total=max(sc.total, 1))
                final = orders - counts["in_flight"] - _missing(counts, orders)
                bars.update(tasks["final state"], completed=final, total=orders)
                if final >= orders or time.monotonic() > deadline:
                    return counts
                stop_if_signalled()
                await asyncio.sleep(0.5)
    finally:
        await conn.close()


def _missing(counts: dict[str, int], orders: int) -> int:
    return max(0, orders - sum(counts.values()))


def summary_table(result: dict[str, Any]) -> Table:
    table = Table(title=f"payflow demo {result['run_id']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in (
        "orders",
        "settled",
        "cancelled",
        "rejected",
        "manual_review",
        "in_flight",
        "messages_published",
        "dead_letters",
        "elapsed_s",
        "orders_per_s",
    ):
        table.add_row(key, str(result[key]))
    audit = result["audit"]
    table.add_row("audit", "clean" if audit["ok"] else f"{len(audit['violations'])} violation(s)")
    return table


async def run_demo(
    settings: Settings,
    orders: int,
    timeout_s: float,
    children: Children,
    console: Console | None,
) -> dict[str, Any]:
    """Everything from services to the audit; the caller stops `children` afterwards."""

    def say(text: str) -> None:
        if console is not None:
            console.print(text)

    say("[bold]payflow demo[/]: starting services")
    statuses = await in_daemon_thread(lambda: manager.up(settings))
    if console is not None:
        console.print(manager.status_table(statuses))
    await migrate_all(settings, quiet=console is None)
    run_id = f"demo{datetime.now(UTC):%m%d%H%M%S}{secrets.token_hex(2)}"
    await prepare(settings, run_id, orders)
    started = await ensure_pipeline(settings, children)
    say(f"workers: {'started ' + ', '.join(started) if started else 'already running'}")
    since = datetime.now(UTC)
    t0 = time.monotonic()
    sent = await publish_orders(settings, run_id, orders)
    stop_if_signalled()  # the producer's stop can swallow a cancellation
    say(f"published {sent} messages for {orders} orders (run {run_id})")
    counts = await watch(settings, run_id, orders, since, timeout_s, console)
    elapsed = time.monotonic() - t0
    conn = await connect(settings)
    try:
        audit = await run_audit(conn)
        dead = await conn.fetchval("SELECT count(*) FROM dead_letters WHERE failed_at >= $1", since)
    finally:
        await conn.close()
    return {
        "run_id": run_id,
        "orders": orders,
        **counts,
        "messages_published": sent,
        "dead_letters": dead,
        "elapsed_s": round(elapsed, 2),
        "orders_per_s": round(orders / elapsed, 1) if elapsed else 0.0,
        "audit": audit,
    }


async def main_demo(settings: Settings, orders: int, *, as_json: bool, timeout_s: float) -> int:
    console = None if as_json else Console()
    children = Children(settings.state_dir / "logs")
    try:
        result = await run_demo(settings, orders, timeout_s, children, console)
    except asyncio.CancelledError:  # SIGINT or SIGTERM (workers/cli/aio.py): stop quickly
        await children.stop(timeout_s=10.0)
        raise
    finally:
        await children.stop()  # no-op after the line above
    counts = {k: result[k] for k in (*progress.FINAL, "in_flight")}
    audit = result["audit"]
    ok = counts["in_flight"] == 0 and _missing(counts, orders) == 0 and audit["ok"]
    if console is None:
        print(json.dumps(result))
        return 0 if ok else 1
    console.print(summary_table(result))
    for v in audit["violations"][:20]:
        console.print(f"[red]audit[/] {v['check']}: {v['row']}")
    console.print(
        "[green]every order reached a final state; audit clean[/]"
        if ok
        else "[red]demo incomplete or audit failed[/]"
    )
    return 0 if ok else 1
