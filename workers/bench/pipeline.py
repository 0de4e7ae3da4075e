"""One bench run's world: its own database and topic namespace, seeded, and the workers and
the gateway simulator as child processes with their own ports, torn down afterwards.

Each run starts empty, so one run's inbox or stock does not slow the next, and runs never
see each other's messages. The environment of this process is switched to the run's for
its duration (topic names are read from it), then restored.
"""

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from contracts.topics import all_topic_names
from infra.migrate import dsn_for
from infra.ports import free_port, free_ports
from infra.services.process import ServiceError
from infra.settings import Settings
from workers.bench import store
from workers.bench.relay import drop_topics
from workers.cli.run import health_port
from workers.cli.setup import migrate_all
from workers.ops.processes import Children, demo_env, ensure_pipeline, who_answers
from workers.runtime.db import connect
from workers.runtime.health_server import REPLICA_STEP
from workers.stage_names import STAGE_NAMES

BENCHED_STAGES = tuple(s for s in STAGE_NAMES if s != "wallet")
READY_WITHIN_S = 60.0


# How the workers run: every stage, the webhook and the sweeper in one process (`payflow
# run all`), or one process each (a stage per core, as a deployment would scale out).
LAYOUTS = ("processes", "one")
# One process per stage, the webhook and the sweeper (wallet operations are not benched).
PROCESSES = (*BENCHED_STAGES, "webhook", "sweeper")


@dataclass
class Run:
    label: str
    run_id: str
    settings: Settings
    conn: asyncpg.Connection
    children: Children
    layout: str = "processes"
    metrics_ports: list[int] = field(default_factory=list)
    # When the run's history (orders drained before the measured ones) was final.
    history_end: datetime | None = None

    @property
    def worker_pids(self) -> list[int]:
        return [
            p.pid
            for n, p in zip(self.children.names, self.children.procs, strict=True)
            if n != "gateway-simulator"
        ]

    @property
    def simulator_pid(self) -> int:
        return self.children.procs[self.children.names.index("gateway-simulator")].pid

    def metrics_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}/metrics" for port in self.metrics_ports]


def run_env(base: Settings, run_id: str, extra: dict[str, str]) -> dict[str, str]:
    database = f"payflow_{run_id}"
    env = {
        "PAYFLOW_TOPIC_NAMESPACE": run_id,
        "PAYFLOW_PG_DATABASE": database,
        "PAYFLOW_METRICS_PORT": str(free_ports(REPLICA_STEP)),  # the base, then one per stage
        "PAYFLOW_GATEWAY_URL": f"http://127.0.0.1:{free_port()}",
        "PAYFLOW_WEBHOOK_URL": f"http://127.0.0.1:{free_port()}/webhooks",
        # The sweeper's statement pass is not what is measured.
        "PAYFLOW_STATEMENT_SWEEP_S": "0",
    }
    if base.pg_dsn:
        env["PAYFLOW_PG_DSN"] = dsn_for(base.pg_dsn, database)
    return env | extra


@asynccontextmanager
async def bench_run(
    base: Settings,
    label: str,
    run_id: str,
    orders: int,
    *,
    keep: bool,
    extra: dict[str, str],
    layout: str = "processes",
    history: int = 0,
) -> AsyncIterator[Run]:
    """Database and topics created and seeded for `orders` orders; workers not started yet
    (`start` them once the orders are published, so the drain starts from a full topic).
    Both are dropped afterwards unless `keep`."""
    env = run_env(base, run_id, extra)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    children = Children(base.state_dir / "logs" / f"bench-{run_id}")
    settings = Settings()  # the run's, from the environment just set
    conn: asyncpg.Connection | None = None
    try:
        await migrate_all(settings, quiet=True)
        conn = await connect(settings)
        await store.seed_run(conn, run_id, orders, history)
        yield Run(label, run_id, settings, conn, children, layout)
    finally:
        await children.stop(timeout_s=20.0)
        if conn is not None:
            await conn.close()
        if not keep:
            await _drop(settings)
            # Topic names are read from the environment, still the run's here.
            await drop_topics(settings, all_topic_names())
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


async def start(run: Run) -> None:
    run.metrics_ports = []  # started again after a history: only the new processes count
    if run.layout == "one":
        await ensure_pipeline(run.settings, run.children)
        run.metrics_ports = [run.settings.metrics_port]
        return
    env = demo_env()
    run.children.start("gateway-simulator", "run", "gateway-simulator", env=env)
    for name in PROCESSES:
        run.children.start(name, "run", name, env=env)
        if name in BENCHED_STAGES:
            run.metrics_ports.append(health_port(run.settings, name))
    deadline = time.monotonic() + READY_WITHIN_S
    waiting = [f"http://127.0.0.1:{p}/healthz" for p in run.metrics_ports]
    waiting.append(f"{run.settings.gateway_url}/healthz")
    while waiting:
        exited = run.children.first_exited()
        if exited:
            raise ServiceError(f"a bench process failed at start: {exited}")
        if time.monotonic() > deadline:
            raise ServiceError(
                f"bench processes did not answer within {READY_WITHIN_S:.0f} s: "
                f"{', '.join(waiting)} (logs in {run.children.log_dir})"
            )
        waiting = [url for url in waiting if (await who_answers(url)).occupant == "nothing"]
        await asyncio.sleep(0.2)


async def _drop(settings: Settings) -> None:
    admin = await connect(settings, dsn_for(settings.dsn, "postgres"))
    try:
        name = settings.pg_database.replace('"', '""')
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except asyncpg.PostgresError:
        pass  # left behind; named payflow_bench*, safe to drop by hand
    finally:
        await admin.close()
