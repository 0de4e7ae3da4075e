"""Logging: one JSON stream for structlog and every stdlib logger, repeats collapsed,
secrets kept out. Assertions are on the lines written, with a fake clock."""

import io
import json
import logging
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import structlog
from pydantic import SecretStr

from workers.runtime import logs as logs_module
from workers.runtime.log_collapse import CollapseFilter
from workers.runtime.logs import (
    LIBRARY_LOGGERS,
    _JsonStreamHandler,
    configure_logging,
    debug_enabled,
    error_fields,
    flush_logs,
)

DSN = "postgresql://payflow:hunter2@127.0.0.1:5432/payflow"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Out:
    """The configured stream, read as parsed JSON lines (every line must be JSON)."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.clock = Clock()
        self._read = 0

    def configure(self, level: str = "INFO", collapse_s: float = 10.0) -> None:
        configure_logging(
            level, collapse_s, stream=self.stream, clock=self.clock, flush_interval_s=None
        )

    def lines(self) -> list[dict[str, Any]]:
        """Lines written since the last call."""
        text = self.stream.getvalue()[self._read :]
        self._read += len(text)
        return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    library_levels = {n: logging.getLogger(n).level for n in LIBRARY_LOGGERS}
    config = structlog.get_config()
    hooks = sys.excepthook, threading.excepthook
    debug = debug_enabled()
    yield
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, lib_level in library_levels.items():
        logging.getLogger(name).setLevel(lib_level)
    structlog.configure(**config)
    logs_module._debug = debug  # configure_logging set it for the level configured
    sys.excepthook, threading.excepthook = hooks
    logging.captureWarnings(False)


@pytest.fixture
def out() -> Out:
    o = Out()
    o.configure()
    return o


def test_library_record_is_one_json_line_with_logger_and_level(out: Out) -> None:
    logging.getLogger("aiokafka.conn").error("Unable connect to node with id %s", 1)
    [line] = out.lines()
    assert line["logger"] == "aiokafka.conn"
    assert line["level"] == "error"
    assert line["event"] == "Unable connect to node with id 1"
    stamp = datetime.fromisoformat(line["timestamp"])
    assert stamp.utcoffset() == timedelta(0)
    assert list(line)[:4] == ["timestamp", "level", "logger", "event"]


def test_structlog_line_carries_bound_contextvars(out: Out) -> None:
    structlog.contextvars.bind_contextvars(stage="settlement", event_id="e-1", order_id="o-1")
    structlog.get_logger().info("batch_done", events=3)
    logging.getLogger("asyncpg.pool").warning("pool is closing")
    structlog_line, stdlib_line = out.lines()
    assert structlog_line["event"] == "batch_done"
    assert structlog_line["events"] == 3
    assert structlog_line["level"] == "info"
    assert structlog_line["logger"] == __name__
    for line in (structlog_line, stdlib_line):
        assert (line["stage"], line["event_id"], line["order_id"]) == ("settlement", "e-1", "o-1")


def test_stderr_is_the_default_stream(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", flush_interval_s=None)
    logging.getLogger("aiohttp.client").error("client error")
    structlog.get_logger().warning("kafka_not_ready")
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = [json.loads(line) for line in captured.err.splitlines()]
    assert [line["event"] for line in lines] == ["client error", "kafka_not_ready"]


def test_identical_warnings_in_a_window_are_one_line_then_a_count(out: Out) -> None:
    coordinator = logging.getLogger("aiokafka.consumer.group_coordinator")
    for node in range(500):  # same template, different args: still identical
        coordinator.warning("Heartbeat failed for node %s", node)
    [first] = out.lines()
    assert first["event"] == "Heartbeat failed for node 0"
    assert "repeated" not in first

    out.clock.now += 9.9
    flush_logs()
    assert out.lines() == []  # the window is still open

    out.clock.now += 0.1
    flush_logs()
    [summary] = out.lines()
    assert summary["event"] == "Heartbeat failed for node 0"
    assert summary["repeated"] == 499
    assert summary["logger"] == "aiokafka.consumer.group_coordinator"
    assert summary["level"] == "warning"

    flush_logs()
    assert out.lines() == []  # counted once


def test_the_next_identical_record_after_the_window_writes_the_count_first(out: Out) -> None:
    log = structlog.get_logger()
    for _ in range(3):
        log.warning("broker_unreachable", error="KafkaConnectionError")
    out.clock.now += 10
    log.warning("broker_unreachable", error="KafkaConnectionError")
    lines = out.lines()
    assert [line.get("repeated") for line in lines] == [None, 2, None]


def test_structlog_lines_with_different_fields_are_never_collapsed(out: Out) -> None:
    log = structlog.get_logger()
    for offset in range(50):  # fifty dead letters are fifty lines an operator must see
        log.warning("dead_lettered", stage="order_build", offset=offset, reason="not_json")
    assert [line["offset"] for line in out.lines()] == list(range(50))


def test_a_window_without_repeats_writes_no_count(out: Out) -> None:
    logging.getLogger("aiokafka").error("Unable to update metadata from %s", [1])
    out.clock.now += 60
    flush_logs()
    assert len(out.lines()) == 1


def test_info_lines_are_never_collapsed(out: Out) -> None:
    for _ in range(50):
        structlog.get_logger().info("batch_done", events=200)
        logging.getLogger("payflow.app").info("same text")
    assert len(out.lines()) == 100


def test_different_levels_loggers_and_exception_types_are_different_keys(out: Out) -> None:
    logging.getLogger("a").warning("x")
    logging.getLogger("a").error("x")
    logging.getLogger("b").warning("x")
    for exc in (ValueError("v"), KeyError("k"), ValueError("w")):
        try:
            raise exc
        except Exception:
            logging.getLogger("a").exception("x")
    assert len(out.lines()) == 5


def test_shutdown_flush_writes_open_windows(out: Out) -> None:
    for _ in range(3):
        logging.getLogger("kafka").error("gone")
    flush_logs(force=True)
    assert [line.get("repeated") for line in out.lines()] == [None, 2]


def test_a_count_keeps_the_first_records_context(out: Out) -> None:
    structlog.contextvars.bind_contextvars(stage="fund_freeze")
    for _ in range(2):
        logging.getLogger("aiokafka").error("Unable connect to node with id %s", 1)
    structlog.contextvars.clear_contextvars()
    flush_logs(force=True)
    assert [(line["stage"], line.get("repeated")) for line in out.lines()] == [
        ("fund_freeze", None),
        ("fund_freeze", 1),
    ]


def test_tracked_keys_are_bounded_and_evicted_counts_are_written() -> None:
    written: list[logging.LogRecord] = []
    collapse = CollapseFilter(10.0, written.append, clock=Clock(), max_keys=2)

    def record(msg: str) -> logging.LogRecord:
        return logging.makeLogRecord({"name": "x", "levelno": logging.ERROR, "msg": msg})

    assert collapse.filter(record("a")) is True
    assert collapse.filter(record("a")) is False
    assert collapse.filter(record("b")) is True
    assert collapse.filter(record("c")) is True  # evicts "a", the oldest: its count is written
    assert [(r.msg, r.payflow_repeated) for r in written] == [("a", 1)]  # type: ignore[attr-defined]
    assert collapse.filter(record("a")) is True  # forgotten, so written again


def test_exception_is_one_line_with_an_exception_field(out: Out) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("aiohttp.server").exception("Error handling request")
        structlog.get_logger().exception("step_failed", order_id="o-1")
    stdlib_line, structlog_line = out.lines()
    for line in (stdlib_line, structlog_line):
        assert line["level"] == "error"
        assert line["exception"].startswith("Traceback (most recent call last):")
        assert line["exception"].rstrip().endswith("ValueError: boom")
        assert "exc_info" not in line


def test_secret_keys_and_secret_values_are_redacted(out: Out) -> None:
    structlog.get_logger().warning(
        "connecting",
        password="hunter2",
        api_key="k-123",
        gateway_secret="s-1",
        access_token="t-1",
        headers={"Authorization": "Bearer abc", "Content-Type": "application/json"},
        settings_value=SecretStr("sv-1"),
        user="payflow",
    )
    [line] = out.lines()
    for key in ("password", "api_key", "gateway_secret", "access_token", "settings_value"):
        assert line[key] == "**********"
    assert line["headers"] == {"Authorization": "**********", "Content-Type": "application/json"}
    assert line["user"] == "payflow"
    raw = out.stream.getvalue()
    for secret in ("hunter2", "k-123", "s-1", "t-1", "abc", "sv-1"):
        assert secret not in raw


def test_dsn_passwords_are_masked_in_messages_values_and_tracebacks(out: Out) -> None:
    logging.getLogger("asyncpg").error("cannot connect to %s", DSN)
    structlog.get_logger().warning(
        "db_unreachable", dsn=DSN, detail="host=db password=hunter2", env="PG_PASSWORD=hunter2"
    )
    try:
        raise ConnectionError(f"refused: {DSN}")
    except ConnectionError:
        structlog.get_logger().exception("connect_failed")
    message, fields, trace = out.lines()
    assert message["event"] == "cannot connect to postgresql://payflow:***@127.0.0.1:5432/payflow"
    assert fields["dsn"] == "postgresql://payflow:***@127.0.0.1:5432/payflow"
    assert fields["detail"] == "host=db password=***"
    assert fields["env"] == "PG_PASSWORD=***"
    assert "postgresql://payflow:***@" in trace["exception"]
    assert "hunter2" not in out.stream.getvalue()


def test_configuring_twice_does_not_double_lines(out: Out) -> None:
    out.configure()
    out.configure("DEBUG")
    logging.getLogger("aiokafka").warning("once")
    structlog.get_logger().debug("once_too")
    assert [line["event"] for line in out.lines()] == ["once", "once_too"]


def test_a_basic_config_handler_is_replaced(out: Out) -> None:
    logging.getLogger().addHandler(logging.StreamHandler(io.StringIO()))
    out.configure()
    plain = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    assert plain == []


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("INFO", ["aiokafka warning", "payflow info"]),
        (
            "DEBUG",
            [
                "aiokafka info",
                "aiokafka warning",
                "GET /charges 200",
                "asyncpg info",
                "payflow info",
                "payflow debug",
            ],
        ),
        ("WARNING", ["aiokafka warning"]),
    ],
)
def test_library_chatter_is_held_back_unless_debugging(
    out: Out, level: str, expected: list[str]
) -> None:
    out.configure(level)
    kafka = logging.getLogger("aiokafka.consumer.group_coordinator")
    kafka.debug("aiokafka debug")
    kafka.info("aiokafka info")
    kafka.warning("aiokafka warning")
    logging.getLogger("aiohttp.access").info("GET /charges 200")
    logging.getLogger("asyncpg.pool").info("asyncpg info")
    structlog.get_logger().info("payflow info")
    structlog.get_logger().debug("payflow debug")
    assert [line["event"] for line in out.lines()] == expected


def test_a_record_that_cannot_be_formatted_is_reported_as_json(
    out: Out, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pytest's own capture handler re-raises formatting errors: leave only ours.
    ours = [h for h in logging.getLogger().handlers if isinstance(h, _JsonStreamHandler)]
    monkeypatch.setattr(logging.getLogger(), "handlers", ours)
    logging.getLogger("somelib").error("two args %s %s", 1)
    [line] = out.lines()
    assert line["event"] == "log_record_unwritable"
    assert line["record_logger"] == "somelib"
    assert line["error_class"] == "TypeError"


def test_uncaught_exceptions_are_json(out: Out) -> None:
    try:
        raise RuntimeError("crash")
    except RuntimeError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    [line] = out.lines()
    assert (line["level"], line["event"]) == ("critical", "uncaught_exception")
    assert "RuntimeError: crash" in line["exception"]


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ValueError("bad"), {"error_class": "ValueError", "error": "bad"}),
        (TimeoutError(), {"error_class": "TimeoutError", "error": ""}),
        (
            OSError(f"to {DSN}"),
            {"error_class": "OSError", "error": f"to {DSN}".replace("hunter2", "***")},
        ),
    ],
)
def test_error_fields(exc: BaseException, expected: dict[str, str]) -> None:
    assert error_fields(exc) == expected


def test_error_fields_are_bounded() -> None:
    assert len(error_fields(RuntimeError("x" * 2_000))["error"]) == 500


def test_debug_enabled_follows_the_configured_level() -> None:
    """Per-event lines are built only when DEBUG is written (runtime/batch.py, the webhook,
    the simulator): the flag follows the level of the last configuration."""
    stream = io.StringIO()
    configure_logging("INFO", stream=stream, flush_interval_s=None)
    assert not debug_enabled()
    configure_logging("DEBUG", stream=stream, flush_interval_s=None)
    assert debug_enabled()
    structlog.get_logger().debug("now_written")
    assert json.loads(stream.getvalue().splitlines()[-1])["event"] == "now_written"
    configure_logging("WARNING", stream=stream, flush_interval_s=None)
    assert not debug_enabled()
