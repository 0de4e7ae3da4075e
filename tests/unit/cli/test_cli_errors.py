"""Every expected failure is one line saying what is wrong and what to do; the rest name
their class and how to see the traceback."""

import errno
import signal

import asyncpg
import pytest
import redis.exceptions
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError

from infra.services.process import ServiceError
from infra.settings import Settings
from workers.cli.errors import DEBUG_HINT, describe
from workers.cli.failures import CliError, Interrupted
from workers.runtime.db import DatabaseUnreachable
from workers.runtime.health_server import PortInUse


@pytest.fixture
def settings() -> Settings:
    return Settings(
        pg_host="127.0.0.1",
        pg_port=15432,
        pg_database="payflow",
        kafka_bootstrap="127.0.0.1:19092",
        redis_url="redis://127.0.0.1:16379/0",
        gateway_url="http://127.0.0.1:18080",
        metrics_port=19100,
    )


def _redis_refused() -> redis.exceptions.ConnectionError:
    # As redis-py raises it: the refused socket is the context of its own error.
    exc = redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:16379.")
    exc.__context__ = ConnectionRefusedError(111, "Connect call failed")
    return exc


CASES = [
    (
        DatabaseUnreachable("127.0.0.1:15432/payflow", "connection refused"),
        "cannot reach PostgreSQL at 127.0.0.1:15432/payflow (connection refused); start it "
        "with `payflow services up`, or point PAYFLOW_PG_DSN at your server",
    ),
    (
        asyncpg.InvalidCatalogNameError('database "payflow" does not exist'),
        "database 127.0.0.1:15432/payflow does not exist; run `payflow migrate` to create it",
    ),
    (
        asyncpg.InvalidPasswordError('password authentication failed for user "payflow"'),
        "PostgreSQL at 127.0.0.1:15432/payflow refused the login (password authentication "
        'failed for user "payflow"); check the user and password in PAYFLOW_PG_DSN',
    ),
    (
        asyncpg.UndefinedTableError('relation "dead_letters" does not exist'),
        'database 127.0.0.1:15432/payflow has no payflow schema (relation "dead_letters" does '
        "not exist); run `payflow migrate`",
    ),
    (
        KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 19092, 2)]"),
        "cannot reach Kafka at 127.0.0.1:19092 (connection refused or no broker); start it "
        "with `payflow services up`, or set PAYFLOW_KAFKA_BOOTSTRAP",
    ),
    (
        KafkaTimeoutError("no answer within 5 s"),
        "cannot reach Kafka at 127.0.0.1:19092 (no answer in time); start it with "
        "`payflow services up`, or set PAYFLOW_KAFKA_BOOTSTRAP",
    ),
    (
        _redis_refused(),
        "cannot reach Redis at 127.0.0.1:16379 (connection refused); start it with "
        "`payflow services up`, or set PAYFLOW_REDIS_URL",
    ),
    (
        redis.exceptions.TimeoutError("Timeout connecting to server"),
        "cannot reach Redis at 127.0.0.1:16379 (no answer in time); start it with "
        "`payflow services up`, or set PAYFLOW_REDIS_URL",
    ),
    (
        OSError(
            errno.EADDRINUSE,
            "error while attempting to bind on address ('127.0.0.1', 19100): address already "
            "in use",
        ),
        "port 19100 is already in use (another payflow process or another program); stop it "
        "or set PAYFLOW_METRICS_PORT to a free port",
    ),
    (
        OSError(
            errno.EADDRINUSE,
            "error while attempting to bind on address ('127.0.0.1', 18080): address already "
            "in use",
        ),
        "port 18080 is already in use (another payflow process or another program); stop it "
        "or set PAYFLOW_GATEWAY_URL to a free port",
    ),
    (
        PortInUse(
            "health/metrics port 127.0.0.1:19100 is in use by something that is not "
            "payflow; set PAYFLOW_METRICS_PORT to a free port"
        ),
        "health/metrics port 127.0.0.1:19100 is in use by something that is not payflow; "
        "set PAYFLOW_METRICS_PORT to a free port",
    ),
    (
        ServiceError("Kafka not ready after 90s; /x/server.out:\nline 1 of the log\nline 2"),
        "Kafka not ready after 90s; /x/server.out:",
    ),
    (
        CliError("no dead letter #7; see `payflow dlq list --all`"),
        "no dead letter #7; see `payflow dlq list --all`",
    ),
]


@pytest.mark.parametrize(("exc", "line"), CASES, ids=[type(c[0]).__name__ for c in CASES])
def test_expected_failures_are_one_line_with_what_to_do(
    exc: BaseException, line: str, settings: Settings
) -> None:
    failure = describe(exc, settings)
    assert failure.line == line
    assert "\n" not in failure.line
    assert failure.exit_code == 1
    assert failure.expected


def test_a_set_dsn_is_what_the_hint_names(settings: Settings) -> None:
    external = settings.model_copy(update={"pg_dsn": "postgresql://u:secret@db.example:6543/pf"})
    failure = describe(DatabaseUnreachable("db.example:6543/pf", "connection refused"), external)
    assert failure.line.endswith("; check PAYFLOW_PG_DSN")
    missing = describe(asyncpg.InvalidCatalogNameError("nope"), external)
    assert "db.example:6543/pf" in missing.line
    assert "secret" not in missing.line


@pytest.mark.parametrize(
    ("exc", "line", "code"),
    [
        (Interrupted(signal.SIGINT), "interrupted by SIGINT", 130),
        (Interrupted(signal.SIGTERM), "stopped by SIGTERM", 143),
        (KeyboardInterrupt(), "interrupted by SIGINT", 130),
    ],
)
def test_signals_exit_128_plus_the_signal(exc: BaseException, line: str, code: int) -> None:
    failure = describe(exc, None)
    assert (failure.line, failure.exit_code) == (line, code)


def test_a_cli_error_keeps_its_exit_code() -> None:
    assert describe(CliError("bad", exit_code=3), None).exit_code == 3


def test_an_unexpected_error_names_its_class_and_how_to_see_the_traceback(
    settings: Settings,
) -> None:
    failure = describe(ValueError("something odd"), settings)
    assert failure.line == f"unexpected ValueError: something odd ({DEBUG_HINT})"
    assert failure.exit_code == 1
    assert not failure.expected


def test_without_settings_the_variables_are_named_instead() -> None:
    failure = describe(KafkaConnectionError("x"), None)
    assert "cannot reach Kafka at PAYFLOW_KAFKA_BOOTSTRAP" in failure.line
