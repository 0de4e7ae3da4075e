"""One JSON-lines stream on stderr for structlog and every stdlib logger (aiokafka, aiohttp,
asyncpg, ...). Event and order ids are bound per message by the runtime (contextvars).

structlog is routed through stdlib logging, so one handler with one `ProcessorFormatter`
renders everything; a filter on that handler collapses repeated warnings and errors.
"""

import atexit
import datetime as dt
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from workers.runtime.log_collapse import CONTEXT_ATTR, REPEATED_ATTR, CollapseFilter
from workers.runtime.log_redact import json_default, mask_secrets, redact_secrets

# Libraries say at INFO what the runtime already reports (group joins and rebalances:
# partitions_assigned/revoked) or once per request (aiohttp.access), and at DEBUG they dump
# wire traffic (every fetch and heartbeat) that would bury our own lines. So they are held
# at WARNING, and at INFO when payflow runs at DEBUG.
LIBRARY_LOGGERS = (
    "aiokafka",
    "kafka",
    "asyncpg",
    "aiohttp",
    "aiohttp.access",
    "urllib3",
    "faust",
    "mode",
    "redis",
)
_FIRST_KEYS = ("timestamp", "level", "logger", "event")


class _JsonStreamHandler(logging.StreamHandler[TextIO]):
    """Also reports its own failures (e.g. bad %-args) as a JSON line, not a traceback."""

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        line = {
            "timestamp": dt.datetime.now(dt.UTC).isoformat(),
            "level": "error",
            "logger": __name__,
            "event": "log_record_unwritable",
            "record_logger": record.name,
            "record_msg": mask_secrets(str(record.msg))[:500],
            **(error_fields(exc) if exc else {}),
        }
        try:
            self.stream.write(json.dumps(line, default=repr) + "\n")
            self.flush()
        except Exception:  # nowhere left to report to
            pass


class _Flusher(threading.Thread):
    """Writes the counts of ended collapse windows even when no identical record follows."""

    def __init__(self, collapse: CollapseFilter, interval_s: float) -> None:
        super().__init__(name="payflow-log-flusher", daemon=True)
        self.collapse, self.interval_s = collapse, interval_s
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval_s):
            self.collapse.flush()


_handler: _JsonStreamHandler | None = None
_collapse: CollapseFilter | None = None
_flusher: _Flusher | None = None
_debug = True  # structlog's own default, before configure_logging: every level is written


def debug_enabled() -> bool:
    """Whether DEBUG lines are written: per-event lines are built only then (filtering a
    line still builds a logger and its arguments, per event on a busy stage)."""
    return _debug


def error_fields(exc: BaseException) -> dict[str, str]:
    """Uniform fields for an error in a log line: `log.warning("x", **error_fields(exc))`."""
    return {"error_class": type(exc).__name__, "error": mask_secrets(str(exc))[:500]}


def flush_logs(*, force: bool = False) -> None:
    """Write the pending `repeated` counts: those whose window ended, or all (`force`)."""
    if _collapse is not None:
        _collapse.flush(force=force)
    if _handler is not None:
        _handler.flush()


def configure_logging(
    level: str = "INFO",
    collapse_s: float = 10.0,
    *,
    stream: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
    flush_interval_s: float | None = 1.0,
) -> None:
    """Idempotent: a second call replaces the handler, it never adds one.

    `collapse_s` <= 0 turns collapsing off; `clock` and `flush_interval_s=None` (no timer
    thread) are for tests.
    """
    global _handler, _collapse, _flusher, _debug
    level_no = _level_number(level)
    if _flusher is not None:
        _flusher.stopped.set()
    if _collapse is not None:
        _collapse.flush(force=True)  # counts held by the old filter are not lost

    handler = _JsonStreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(_formatter())
    collapse = CollapseFilter(collapse_s, handler.handle, clock=clock)
    handler.addFilter(collapse)

    root = logging.getLogger()
    for old in list(root.handlers):
        # Ours from an earlier call, and basicConfig's plain-text one.
        if isinstance(old, _JsonStreamHandler) or type(old) is logging.StreamHandler:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level_no)
    library_level = max(level_no, logging.INFO if level_no <= logging.DEBUG else logging.WARNING)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(library_level)
    logging.captureWarnings(True)  # warnings.warn -> logger "py.warnings", as JSON

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Not cached: a module logger first used before this call (or before a second
        # call) would keep the old level and chain for good. Lines are few; it's cheap.
        cache_logger_on_first_use=False,
    )
    _handler, _collapse = handler, collapse
    _debug = level_no <= logging.DEBUG
    _flusher = None
    if flush_interval_s is not None and collapse_s > 0:
        _flusher = _Flusher(collapse, min(flush_interval_s, collapse_s))
        _flusher.start()
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _level_number(level: str) -> int:
    number = logging.getLevelNamesMapping().get(level.upper())
    if number is None:
        raise ValueError(f"unknown log level {level!r}")
    return number


def _formatter() -> structlog.stdlib.ProcessorFormatter:
    processors: list[Processor] = [
        _add_repeated,
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        structlog.processors.format_exc_info,  # exc_info -> "exception": one string
        redact_secrets,
        _put_first,
        structlog.processors.JSONRenderer(default=json_default),
    ]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            _merge_context,
            structlog.processors.add_log_level,
            structlog.stdlib.add_logger_name,
        ],
        processors=processors,
    )


def _merge_context(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """contextvars for stdlib records; a collapse summary brings its first record's."""
    saved = getattr(event_dict.get("_record"), CONTEXT_ATTR, None)
    if saved is None:
        return structlog.contextvars.merge_contextvars(logger, method, event_dict)
    return {**saved, **event_dict}


def _add_repeated(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    repeated = getattr(event_dict.get("_record"), REPEATED_ATTR, None)
    if repeated is not None:
        event_dict["repeated"] = repeated
    return event_dict


def _put_first(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    return {**{k: event_dict[k] for k in _FIRST_KEYS if k in event_dict}, **event_dict}


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    # A crash ends the process: its traceback belongs in the same JSON stream.
    logging.getLogger("payflow").critical("uncaught_exception", exc_info=(kind, exc, tb))
    flush_logs(force=True)


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        logging.getLogger("payflow").critical(
            "uncaught_exception_in_thread",
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )


def _flush_at_exit() -> None:
    flush_logs(force=True)


# Registered after logging's own shutdown hook, so it runs before it (atexit is LIFO).
atexit.register(_flush_at_exit)
