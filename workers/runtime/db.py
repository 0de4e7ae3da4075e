"""Postgres connections: the pool every worker shares, and single connections for tools.

Both give up after settings.connect_timeout_s, and a server that refuses or never answers
is reported as DatabaseUnreachable naming the server (never its password).
"""

import asyncpg

from infra.migrate import pg_target
from infra.settings import Settings


class DatabaseUnreachable(ConnectionError):
    """PostgreSQL refused the connection or did not answer in time."""

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(f"PostgreSQL at {target}: {reason}")
        self.target = target
        self.reason = reason


def unreachable(dsn: str, exc: OSError, timeout_s: float) -> DatabaseUnreachable:
    if isinstance(exc, TimeoutError):
        reason = f"no answer within {timeout_s:g} s"
    elif isinstance(exc, ConnectionRefusedError):
        reason = "connection refused"
    else:
        reason = exc.strerror or str(exc) or type(exc).__name__
    return DatabaseUnreachable(pg_target(dsn), reason)


async def connect(settings: Settings, dsn: str | None = None) -> asyncpg.Connection:
    """One connection to settings.dsn (or dsn), within the connect timeout."""
    target = dsn or settings.dsn
    try:
        return await asyncpg.connect(target, timeout=settings.connect_timeout_s)
    except OSError as exc:  # refused, unreachable, or TimeoutError
        raise unreachable(target, exc, settings.connect_timeout_s) from exc


async def create_pool(settings: Settings, *, max_size: int = 10) -> asyncpg.Pool:
    try:
        pool = await asyncpg.create_pool(
            settings.dsn,
            min_size=1,
            max_size=max_size,
            command_timeout=30,
            timeout=settings.connect_timeout_s,
            server_settings={"application_name": "payflow"},
        )
    except OSError as exc:
        raise unreachable(settings.dsn, exc, settings.connect_timeout_s) from exc
    assert pool is not None
    return pool
