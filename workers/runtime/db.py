"""Postgres connections: the pool every worker shares, and single connections for tools.

Both give up after settings.connect_timeout_s, and a server that refuses or never answers
is reported as DatabaseUnreachable naming the server (never its password).
"""

from contextvars import ContextVar
from typing import Any

import asyncpg

from infra.migrate import pg_target
from infra.settings import Settings
from workers.runtime import metrics, temp_tables

# Who is talking to Postgres, for the round-trip counter: the stage runner sets its name in
# its own task; everything else (sweeper, webhook, tools) counts as "other".
CALLER: ContextVar[str] = ContextVar("payflow_pg_caller", default="other")


class CountingConnection(asyncpg.Connection):  # type: ignore[misc]
    """A connection that counts its round trips per caller (`payflow bench` reports them).
    Each public query method is one round trip; transactions and savepoints go through
    `execute`, so BEGIN, COMMIT, SAVEPOINT and RELEASE are counted too."""

    def get_reset_query(self) -> str:
        # Workers keep no session state on pooled connections (no SET, LISTEN, cursors or
        # session advisory locks; transactions end before release), so the pool's reset
        # statement would be a round trip per acquire that resets nothing.
        return ""

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        metrics.PG_ROUNDTRIPS.labels(CALLER.get()).inc()
        return await super().execute(*args, **kwargs)

    async def executemany(self, *args: Any, **kwargs: Any) -> Any:
        metrics.PG_ROUNDTRIPS.labels(CALLER.get()).inc()
        return await super().executemany(*args, **kwargs)

    async def fetch(self, *args: Any, **kwargs: Any) -> Any:
        metrics.PG_ROUNDTRIPS.labels(CALLER.get()).inc()
        return await super().fetch(*args, **kwargs)

    async def fetchval(self, *args: Any, **kwargs: Any) -> Any:
        metrics.PG_ROUNDTRIPS.labels(CALLER.get()).inc()
        return await super().fetchval(*args, **kwargs)

    async def fetchrow(self, *args: Any, **kwargs: Any) -> Any:
        metrics.PG_ROUNDTRIPS.labels(CALLER.get()).inc()
        return await super().fetchrow(*args, **kwargs)

    async def copy_records_to_table(self, *args: Any, **kwargs: Any) -> Any:
        metrics.PG_ROUNDTRIPS.labels(CALLER.get()).inc()
        return await super().copy_records_to_table(*args, **kwargs)


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


async def create_pool(
    settings: Settings, *, max_size: int = 10, application_name: str = "payflow"
) -> asyncpg.Pool:
    """The worker pool; `application_name` tells the stages apart in pg_stat_activity."""
    try:
        pool = await asyncpg.create_pool(
            settings.dsn,
            min_size=1,
            max_size=max_size,
            command_timeout=30,
            timeout=settings.connect_timeout_s,
            server_settings={"application_name": application_name},
            connection_class=CountingConnection,
            init=temp_tables.create_all,
        )
    except OSError as exc:
        raise unreachable(settings.dsn, exc, settings.connect_timeout_s) from exc
    assert pool is not None
    return pool
