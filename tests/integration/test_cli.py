"""`payflow` as a user types it, against the real services: every mistake and every missing
service is one line on stderr with a non-zero exit, never a traceback."""

import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import asyncpg
import pytest

from contracts.topics import ORDERS_OUTCOMES
from infra.migrate import load_migrations
from infra.ports import free_port
from infra.settings import DEV_GATEWAY_SECRET, Settings

pytestmark = pytest.mark.integration


def payflow(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # The timeout only guards the test run; what is asserted is the outcome.
    return subprocess.run(
        [sys.executable, "-m", "workers.cli.main", *args],
        capture_output=True,
        text=True,
        env=os.environ | (env or {}),
        timeout=120,
    )


def error_line(done: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The one line a failed command printed on stderr (after any warnings)."""
    assert done.returncode == code, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, done.stderr
    assert done.stderr.rstrip().endswith(lines[0]), done.stderr
    return lines[0]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield int(s.getsockname()[1])


@pytest.fixture
def web_port() -> Iterator[int]:
    """A port held by an HTTP server that is not payflow."""

    class NotPayflow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), NotPayflow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def dsn_with_database(settings: Settings, database: str) -> str:
    return settings.dsn.rsplit("/", 1)[0] + "/" + database


async def test_migrate_creates_a_missing_database(services: Settings) -> None:
    name = f"{services.pg_database}_cli_{uuid.uuid4().hex[:6]}"
    env = {"PAYFLOW_PG_DSN": dsn_with_database(services, name)}
    try:
        first = payflow("migrate", env=env)
        assert first.returncode == 0, first.stderr
        assert f"database created: {name}" in first.stdout
        second = payflow("migrate", env=env)
        assert second.returncode == 0, second.stderr
        assert "database created" not in second.stdout
        conn = await asyncpg.connect(dsn_with_database(services, name))
        try:
            applied = await conn.fetchval("SELECT count(*) FROM schema_migrations")
        finally:
            await conn.close()
        assert applied == len(load_migrations())
    finally:
        admin = await asyncpg.connect(dsn_with_database(services, "postgres"))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def _dead_letter(pool: asyncpg.Pool, order_id: str, *, replayed: bool) -> int:
    # On a topic no stage consumes, so replaying it in this test has no effect elsewhere.
    dead_letter_id: int = await pool.fetchval(
        """INSERT INTO dead_letters (consumer, source_topic, source_partition, source_offset,
               message_key, message_value, order_id, reason_code, detail, attempts, replayed_at)
           VALUES ('order_build', $1, 0, (SELECT coalesce(max(source_offset), 0) + 1000000
                   FROM dead_letters), convert_to($2, 'UTF8'), 'cli-test', $2, 'not_json',
                   'cli test', 1, CASE WHEN $3 THEN now() END)
           RETURNING dead_letter_id""",
        ORDERS_OUTCOMES.name,
        order_id,
        replayed,
    )
    return dead_letter_id


async def test_dead_letters_that_cannot_be_replayed_are_named(
    services: Settings, pool: asyncpg.Pool
) -> None:
    order_id = f"cli-{uuid.uuid4().hex[:8]}"
    replayed = await _dead_letter(pool, order_id, replayed=True)
    open_one = await _dead_letter(pool, order_id + "-open", replayed=False)
    missing = 999_999_999

    assert error_line(payflow("dlq", "replay", str(missing))) == (
        f"error: no dead letter #{missing}; see `payflow dlq list --all`"
    )
    assert f"no dead letter #{missing}" in error_line(payflow("dlq", "show", str(missing)))
    line = error_line(payflow("dlq", "replay", str(replayed)))
    assert f"#{replayed} was already replayed" in line and "--force" in line

    mixed = payflow("dlq", "replay", str(open_one), str(missing))
    assert f"no dead letter #{missing}" in error_line(mixed)
    assert f"replayed 1 dead letter(s): #{open_one}" in mixed.stdout
    assert (
        await pool.fetchval(
            "SELECT replay_count FROM dead_letters WHERE dead_letter_id = $1", open_one
        )
        == 1
    )

    forced = payflow("dlq", "replay", "--force", str(replayed))
    assert forced.returncode == 0, forced.stderr
    assert f"replayed 1 dead letter(s): #{replayed}" in forced.stdout


async def test_stage_names_work_in_both_spellings(services: Settings, pool: asyncpg.Pool) -> None:
    order_id = f"cli-{uuid.uuid4().hex[:8]}"
    dead_letter_id = await _dead_letter(pool, order_id, replayed=False)
    for spelling in ("order-build", "order_build"):
        done = payflow("dlq", "list", "--stage", spelling, "--reason", "not_json", "--json")
        assert done.returncode == 0, done.stderr
        assert f'"dead_letter_id": {dead_letter_id},' in done.stdout


def test_a_time_that_is_not_iso_is_a_usage_error(services: Settings) -> None:
    line = error_line(payflow("account", "statement", "x", "--since", "yesterday"), code=2)
    assert "ISO 8601 time with a time zone" in line


def test_demo_orders_must_be_at_least_one() -> None:
    assert "-5 is not in the range x>=1" in error_line(payflow("demo", "--orders", "-5"), code=2)


def test_postgres_refusing_is_one_line() -> None:
    port = free_port()
    done = payflow(
        "dlq", "list", env={"PAYFLOW_PG_DSN": f"postgresql://payflow@127.0.0.1:{port}/x"}
    )
    assert error_line(done) == (
        f"error: cannot reach PostgreSQL at 127.0.0.1:{port}/x (connection refused); "
        "check PAYFLOW_PG_DSN"
    )


def test_postgres_not_answering_gives_up_after_the_connect_timeout(silent_port: int) -> None:
    env = {
        "PAYFLOW_PG_DSN": f"postgresql://payflow@127.0.0.1:{silent_port}/x",
        "PAYFLOW_CONNECT_TIMEOUT_S": "1",
    }
    line = error_line(payflow("audit", env=env))
    assert f"cannot reach PostgreSQL at 127.0.0.1:{silent_port}/x (no answer within 1 s)" in line


def test_kafka_unreachable_is_one_line(services: Settings) -> None:
    port = free_port()
    line = error_line(payflow("migrate", env={"PAYFLOW_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}"}))
    assert line.startswith(f"error: cannot reach Kafka at 127.0.0.1:{port} ")
    assert "PAYFLOW_KAFKA_BOOTSTRAP" in line


def test_services_status_checks_the_server_the_dsn_names(services: Settings) -> None:
    port = free_port()
    down = payflow(
        "services", "status", env={"PAYFLOW_PG_DSN": f"postgresql://u@127.0.0.1:{port}/x"}
    )
    assert down.returncode == 3, down.stderr
    (postgres,) = [line for line in down.stdout.splitlines() if line.startswith("postgres")]
    assert f"127.0.0.1:{port}/x" in postgres and "down" in postgres
    up = payflow("services", "status", env={"PAYFLOW_PG_DSN": services.dsn})
    assert up.returncode == 0, up.stdout
    assert "external server (PAYFLOW_PG_DSN)" in up.stdout


def test_run_on_a_taken_port_is_one_line_after_the_secret_warning(
    services: Settings, web_port: int
) -> None:
    done = payflow("run", "all", env={"PAYFLOW_METRICS_PORT": str(web_port)})
    line = error_line(done)
    assert str(web_port) in line and "PAYFLOW_METRICS_PORT" in line
    assert "WARNING: PAYFLOW_GATEWAY_SECRET is the development default" in done.stderr
    assert '"event": "dev_gateway_secret"' in done.stderr
    assert DEV_GATEWAY_SECRET not in done.stderr

    demo_child = payflow(
        "run", "all", env={"PAYFLOW_METRICS_PORT": str(web_port), "PAYFLOW_DEMO": "1"}
    )
    error_line(demo_child)
    assert "PAYFLOW_GATEWAY_SECRET" not in demo_child.stderr
