"""One idempotent entry point for the local Kafka, Postgres and Redis: up, down, status."""

from __future__ import annotations

import asyncio
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import asyncpg
from rich import box
from rich.console import Console
from rich.table import Table

from infra.migrate import pg_target
from infra.services import kafka, postgres, redis
from infra.services.process import ServiceError, ServiceStatus, run_sync, state_lock
from infra.settings import Settings, get_settings


class _Service(Protocol):
    NAME: str

    def up(self, s: Settings) -> ServiceStatus: ...
    def down(self, s: Settings) -> str: ...
    def status(self, s: Settings) -> ServiceStatus: ...


class ExternalPostgres:
    """The server PAYFLOW_PG_DSN names: checked, never started or stopped by payflow.

    When the DSN is set it is the server every command uses, so that is the one to report;
    a local server would not help a DSN that does not answer.
    """

    NAME = "postgres"

    def status(self, s: Settings) -> ServiceStatus:
        assert s.pg_dsn is not None
        where = pg_target(s.pg_dsn)
        try:
            run_sync(_check_dsn(s.pg_dsn, s.connect_timeout_s))
        except asyncpg.InvalidCatalogNameError:
            return ServiceStatus(self.NAME, True, False, where, _EXTERNAL + ", database missing")
        except Exception as exc:  # refused, timeout, login refused: down, and why
            return ServiceStatus(self.NAME, False, False, where, f"{_EXTERNAL}: {_why(exc, s)}")
        return ServiceStatus(self.NAME, True, False, where, _EXTERNAL)

    def up(self, s: Settings) -> ServiceStatus:
        st = self.status(s)
        if not st.up:
            raise ServiceError(f"{st.detail}; fix PAYFLOW_PG_DSN, or unset it for a local server")
        return st

    def down(self, s: Settings) -> str:
        return f"postgres: {_EXTERNAL}; left alone"


_EXTERNAL = "external server (PAYFLOW_PG_DSN)"


def _why(exc: Exception, s: Settings) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return f"no answer within {s.connect_timeout_s:g} s"
    return str(exc) or type(exc).__name__


async def _check_dsn(dsn: str, timeout_s: float) -> None:
    conn = await asyncpg.connect(dsn, timeout=timeout_s)
    await conn.close()


def services(s: Settings) -> tuple[_Service, ...]:
    # Kafka first: its JVM start is the slowest, and the three start in parallel anyway.
    return (kafka, ExternalPostgres() if s.pg_dsn else postgres, redis)


def _up_one(svc: _Service, s: Settings) -> ServiceStatus:
    reused = svc.status(s).up
    st = svc.up(s)
    st.detail = f"{st.detail} ({'reused' if reused else 'started'})".strip()
    return st


def up(settings: Settings | None = None) -> list[ServiceStatus]:
    """Start what is missing, reuse whatever already answers; raise ServiceError on failure."""
    s = settings or get_settings()
    chosen = services(s)
    with state_lock(s.state_dir), ThreadPoolExecutor(max_workers=len(chosen)) as pool:
        futures = [(svc.NAME, pool.submit(_up_one, svc, s)) for svc in chosen]
    results: list[ServiceStatus] = []
    errors: list[str] = []
    for name, fut in futures:
        try:
            results.append(fut.result())
        except ServiceError as exc:  # the others still come up; report every failure at once
            errors.append(f"{name}: {_first_line(exc)}")
        except Exception as exc:  # e.g. asyncpg refusing: still one readable line per service
            errors.append(f"{name}: {type(exc).__name__}: {_first_line(exc)}")
    if errors:
        raise ServiceError("; ".join(errors))
    return results


def down(settings: Settings | None = None) -> list[str]:
    """Stop only the processes we started; foreign ones are left running."""
    s = settings or get_settings()
    with state_lock(s.state_dir):
        return [svc.down(s) for svc in services(s)]


def status(settings: Settings | None = None) -> list[ServiceStatus]:
    s = settings or get_settings()
    return [svc.status(s) for svc in services(s)]


async def wait_ready(limit_s: float = 90.0, settings: Settings | None = None) -> None:
    """Wait until every service answers (for tests and workers started alongside `up`)."""
    deadline = time.monotonic() + limit_s
    while True:
        down_now = [st.name for st in await asyncio.to_thread(status, settings) if not st.up]
        if not down_now:
            return
        if time.monotonic() > deadline:
            raise ServiceError(f"not ready after {limit_s:.0f}s: {', '.join(down_now)}")
        await asyncio.sleep(1.0)


def _first_line(exc: BaseException) -> str:
    # Start-up errors end with a log tail; its first line names the log file.
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else repr(exc)


def status_table(statuses: list[ServiceStatus]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("service", "state", "started by", "address", "detail"):
        table.add_column(column)
    for st in statuses:
        state = "[green]up[/]" if st.up else "[red]down[/]"
        owner = ("payflow" if st.owned else "foreign") if st.up else "-"
        table.add_row(st.name, state, owner, st.address, st.detail)
    return table


def main_services(action: str, settings: Settings | None = None) -> int:
    """CLI body for `payflow services up|down|status`; returns the exit code (3: one is down)."""
    s = settings or get_settings()
    # Piped output is not cut to 80 columns: a status line stays one line for grep.
    console = Console(width=None if sys.stdout.isatty() else 160)
    try:
        if action == "up":
            console.print(status_table(up(s)))
        elif action == "down":
            for line in down(s):
                print(line)
        elif action == "status":
            statuses = status(s)
            console.print(status_table(statuses))
            return 0 if all(st.up for st in statuses) else 3
        else:
            print(f"error: unknown action {action!r}: expected up, down or status", file=sys.stderr)
            return 2
    except ServiceError as exc:
        print(f"error: {_first_line(exc)}", file=sys.stderr)
        return 1
    return 0
