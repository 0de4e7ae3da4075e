"""`payflow bench` works end to end at a small size: every figure the issue asks for is
reported, every run's audit is clean, and its databases are gone afterwards. Speed is not
asserted here (measured by the command itself, never by a test)."""

import asyncio
import json
import sys
from typing import Any

import asyncpg
import pytest

from infra.settings import Settings

pytestmark = pytest.mark.integration

HEADLINE = (
    "orders_per_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "cpu_ms_per_order",
    "relay_orders_per_s",
    "ratio_vs_relay",
    "batch1_orders_per_s",
    "roundtrips_per_order",
    "deadlocks",
    "audit_ok",
    "hot_merchant_orders_per_s",
    "hot_vs_uniform",
)


async def _bench_databases(services: Settings) -> set[str]:
    conn = await asyncpg.connect(services.dsn)
    try:
        rows = await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE 'payflow_bench%'"
        )
    finally:
        await conn.close()
    return {r["datname"] for r in rows}


async def _bench(*args: str) -> dict[str, Any]:
    """`payflow bench ... --json` in a child process: its JSON, once it exited 0."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workers.cli.main",
        "bench",
        *args,
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 600)
    assert proc.returncode == 0, err.decode()[-2000:]
    result: dict[str, Any] = json.loads(out)
    return result


async def test_bench_reports_every_figure_with_clean_audits(services: Settings) -> None:
    # Another bench on this server (one kept with --keep) is not this one's to drop.
    before = await _bench_databases(services)
    args = ["--orders", "60", "--latency-orders", "20", "--batch1-orders", "12"]
    result = await _bench(*args, "--hot-merchant")
    for key in HEADLINE:
        assert key in result, key
    assert result["audit_ok"] is True
    assert result["orders_per_s"] > 0 and result["relay_orders_per_s"] > 0
    assert result["batch1_orders_per_s"] > 0 and result["hot_merchant_orders_per_s"] > 0
    assert set(result["roundtrips_per_order"]) == {
        "order_build",
        "fund_freeze",
        "gateway_request",
        "callback_handling",
        "settlement",
    }
    # Every stage's statements are counted from its first batch: a baseline taken once the
    # first order was seen came after order build's whole batch in a run this small (0.0).
    assert all(n > 0 for n in result["roundtrips_per_order"].values()), result
    assert {"workers", "simulator"} <= set(result["cpu_ms_per_order"])
    assert isinstance(result["deadlocks"], int)
    details = result["details"]
    # Every order of every run reached a final state (the run would have failed otherwise).
    assert sum(details["payflow"]["outcomes"].values()) == 60
    # Every order wrote to Postgres: its WAL is counted per order.
    wal = details["payflow"]["wal_per_order"]
    assert wal["records"] > 0 and wal["bytes"] > 0 and wal["full_page_images"] >= 0
    assert details["latency"]["orders"] == 20
    # The broker was warmed before anything was measured, with no more messages than orders.
    assert details["warmup"]["messages"] == 60
    assert sum(details["hot_merchant"]["outcomes"].values()) == 60
    assert await _bench_databases(services) - before == set(), "the bench drops its databases"


async def test_bench_with_a_history_measures_only_the_orders_after_it(services: Settings) -> None:
    """`--history N`: N orders go through the same processes first, which are then stopped
    and started again; the drain's figures count only the measured orders, and the audit
    covers both."""
    before = await _bench_databases(services)
    args = ["--orders", "40", "--history", "50", "--latency-orders", "10", "--no-baselines"]
    result = await _bench(*args)
    assert result["audit_ok"] is True and result["orders_per_s"] > 0
    details = result["details"]
    assert sum(details["history"]["outcomes"].values()) == 50
    assert details["history"]["database_mib"] > 0
    # Every measured order, and none of the history's, is in the drain's outcomes.
    assert sum(details["payflow"]["outcomes"].values()) == 40
    assert details["latency"]["orders"] == 10
    assert await _bench_databases(services) - before == set(), "the bench drops its databases"
