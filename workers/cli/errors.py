"""Every failure of a command as ONE line: what is wrong, and what to do about it.

`describe` maps an exception to that line and an exit code. It is pure (no I/O), so the
whole table is unit-tested; main imports it only when a command failed, as it needs the
drivers' exception types. Expected failures (a service down, a database missing, a port
taken) never show a traceback; an unexpected one names its class and says how to see it.
"""

import errno
import re
import signal
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg
import redis.exceptions
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    NoBrokersAvailable,
    RequestTimedOutError,
)

from infra.migrate import MigrationError, pg_target
from infra.services.process import ServiceError
from infra.settings import Settings
from workers.cli.failures import CliError, Interrupted
from workers.runtime.db import DatabaseUnreachable
from workers.runtime.health_server import PortInUse

DEBUG_HINT = "pass --debug or set PAYFLOW_LOG_LEVEL=DEBUG to see the traceback"
_BIND_PORT = re.compile(r"\(\s*'[^']*',\s*(\d+)")  # aiohttp: "bind on address ('h', 19100)"


@dataclass(frozen=True)
class Failure:
    line: str
    exit_code: int = 1
    expected: bool = True


def _first_line(text: str) -> str:
    # Some messages carry a log tail after their first line; the first line names the log.
    lines = text.strip().splitlines()
    return lines[0] if lines else text


def _pg_hint(settings: Settings | None) -> str:
    if settings is not None and settings.pg_dsn:
        return "check PAYFLOW_PG_DSN"
    return "start it with `payflow services up`, or point PAYFLOW_PG_DSN at your server"


def _why(exc: BaseException) -> str:
    """Why a connection failed, in a few words, from the exception or what caused it."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, (TimeoutError, redis.exceptions.TimeoutError)):
            return "no answer in time"
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__


def _redis_address(settings: Settings | None) -> str:
    if settings is None:
        return "PAYFLOW_REDIS_URL"
    url = urlsplit(settings.redis_url)
    return f"{url.hostname}:{url.port}"


def _port_env(port: int | None, settings: Settings | None) -> str:
    if settings is not None and port is not None and urlsplit(settings.gateway_url).port == port:
        return "PAYFLOW_GATEWAY_URL"
    return "PAYFLOW_METRICS_PORT"


def _port_in_use(exc: OSError, settings: Settings | None) -> Failure:
    found = _BIND_PORT.search(str(exc))
    port = int(found[1]) if found else None
    env = _port_env(port, settings)
    what = f"port {port} is" if port is not None else "a port this command needs is"
    return Failure(
        f"{what} already in use (another payflow process or another program); "
        f"stop it or set {env} to a free port"
    )


def _postgres(exc: asyncpg.PostgresError, target: str, settings: Settings | None) -> Failure:
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return Failure(f"database {target} does not exist; run `payflow migrate` to create it")
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return Failure(
            f"PostgreSQL at {target} refused the login ({exc}); "
            "check the user and password in PAYFLOW_PG_DSN"
        )
    if isinstance(exc, (asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError)):
        return Failure(f"PostgreSQL at {target} cannot take a connection now ({exc}); retry soon")
    if isinstance(exc, asyncpg.UndefinedTableError):
        return Failure(f"database {target} has no payflow schema ({exc}); run `payflow migrate`")
    return Failure(f"PostgreSQL at {target}: {type(exc).__name__}: {exc}", expected=False)


def describe(exc: BaseException, settings: Settings | None = None) -> Failure:
    """The line to print and the exit code for a failure that ended a command."""
    target = pg_target(settings.dsn) if settings is not None else "PAYFLOW_PG_DSN"
    bootstrap = settings.kafka_bootstrap if settings is not None else "PAYFLOW_KAFKA_BOOTSTRAP"
    if isinstance(exc, CliError):
        return Failure(str(exc), exc.exit_code)
    if isinstance(exc, Interrupted):
        name = signal.Signals(exc.signum).name
        return Failure(
            f"{'interrupted' if name == 'SIGINT' else 'stopped'} by {name}", 128 + exc.signum
        )
    if isinstance(exc, KeyboardInterrupt):
        return Failure("interrupted by SIGINT", 128 + signal.SIGINT)
    if isinstance(exc, (ServiceError, MigrationError, PortInUse)):
        return Failure(_first_line(str(exc)))
    if isinstance(exc, DatabaseUnreachable):
        return Failure(
            f"cannot reach PostgreSQL at {exc.target} ({exc.reason}); {_pg_hint(settings)}"
        )
    if isinstance(exc, asyncpg.PostgresError):
        return _postgres(exc, target, settings)
    if isinstance(exc, (KafkaConnectionError, NoBrokersAvailable)):
        reason = "connection refused or no broker"
    elif isinstance(exc, (KafkaTimeoutError, RequestTimedOutError)):
        reason = "no answer in time"
    else:
        reason = ""
    if reason:
        return Failure(
            f"cannot reach Kafka at {bootstrap} ({reason}); start it with "
            "`payflow services up`, or set PAYFLOW_KAFKA_BOOTSTRAP"
        )
    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        return Failure(
            f"cannot reach Redis at {_redis_address(settings)} ({_why(exc)}); start it with "
            "`payflow services up`, or set PAYFLOW_REDIS_URL"
        )
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return _port_in_use(exc, settings)
    return Failure(f"unexpected {type(exc).__name__}: {exc} ({DEBUG_HINT})", expected=False)
