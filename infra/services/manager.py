"""One idempotent entry point for the local Kafka, Postgres and Redis: up, down, status."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from infra.services import kafka, postgres, redis
from infra.services.process import ServiceError, ServiceStatus, state_lock
from infra.settings import Settings, get_settings


class _Service(Protocol):
    NAME: str

    def up(self, s: Settings) -> ServiceStatus: ...
    def down(self, s: Settings) -> str: ...
    def status(self, s: Settings) -> ServiceStatus: ...


# Kafka first: its JVM start is the slowest, and the three start in parallel anyway.
SERVICES: tuple[_Service, ...] = (kafka, postgres, redis)


def _up_one(svc: _Service, s: Settings) -> ServiceStatus:
    reused = svc.status(s).up
    st = svc.up(s)
    st.detail = f"{st.detail} ({'reused' if reused else 'started'})".strip()
    return st


def up(settings: Settings | None = None) -> list[ServiceStatus]:
    """Start what is missing, reuse whatever already answers; raise ServiceError on failure."""
    s = settings or get_settings()
    with state_lock(s.state_dir), ThreadPoolExecutor(max_workers=len(SERVICES)) as pool:
        futures = [(svc.NAME, pool.submit(_up_one, svc, s)) for svc in SERVICES]
    results: list[ServiceStatus] = []
    errors: list[str] = []
    for name, fut in futures:
        try:
            results.append(fut.result())
        except ServiceError as exc:  # the others still come up; report every failure at once
            errors.append(f"{name}: {exc}")
        except Exception as exc:  # e.g. asyncpg refusing: still one readable line per service
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
    if errors:
        raise ServiceError("\n".join(errors))
    return results


def down(settings: Settings | None = None) -> list[str]:
    """Stop only the processes we started; foreign ones are left running."""
    s = settings or get_settings()
    with state_lock(s.state_dir):
        return [svc.down(s) for svc in SERVICES]


def status(settings: Settings | None = None) -> list[ServiceStatus]:
    s = settings or get_settings()
    return [svc.status(s) for svc in SERVICES]


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


def main_services(action: str) -> int:
    """CLI body for `payflow services up|down|status`; returns the exit code."""
    try:
        if action == "up":
            for st in up():
                print(st.line())
        elif action == "down":
            for line in down():
                print(line)
        elif action == "status":
            statuses = status()
            for st in statuses:
                print(st.line())
            return 0 if all(st.up for st in statuses) else 3
        else:
            print(f"unknown action {action!r}: expected up, down or status")
            return 2
    except ServiceError as exc:
        print(f"error: {exc}")
        return 1
    return 0
