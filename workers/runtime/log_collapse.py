"""Collapse bursts of identical WARNING+ records: the first is written, the rest counted.

While Kafka is down aiokafka logs the same few errors every few hundred milliseconds per
worker. Per key (logger, level, message template or structlog event, exception type) the
first record of a window is written; identical ones within `window_s` are counted, and
when the window ends one copy of the first record is written with `repeated` = the count.
A window's end is noticed when the next identical record arrives or when `flush()` runs
(a timer and shutdown call it). INFO and below pass untouched: per-batch summaries are
never collapsed away.
"""

import logging
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

# Attributes set on the record copies this filter writes itself.
REPEATED_ATTR = "payflow_repeated"
CONTEXT_ATTR = "payflow_context"

Key = tuple[str, int, str, str]

# A template that is only placeholders ("%s", "%s: %s", as py.warnings uses) says nothing:
# key on the rendered message instead.
_PLACEHOLDER = re.compile(r"%[-#0 +]*[\d.*]*[a-zA-Z]")
_WORD = re.compile(r"[A-Za-z]{3,}")


# Fields that differ between true repeats of one structlog line.
_VOLATILE = frozenset({"timestamp", "exc_info", "next_in_s", "seconds_since_progress"})


@dataclass
class _Window:
    opened: float
    first: logging.LogRecord
    suppressed: int = 0


def _exc_type_name(exc_info: Any) -> str:
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        return type(exc_info).__name__
    if isinstance(exc_info, tuple) and exc_info and exc_info[0] is not None:
        return str(exc_info[0].__name__)
    return ""


def record_key(record: logging.LogRecord) -> Key:
    msg = record.msg
    if isinstance(msg, dict):  # a structlog entry, wrapped by ProcessorFormatter
        # The event with its fields: two dead letters at different offsets, or two retries
        # with different errors, are different lines; only true repeats collapse.
        fields = sorted((k, repr(v)[:200]) for k, v in msg.items() if k not in _VOLATILE)
        return (
            record.name,
            record.levelno,
            repr(fields),
            _exc_type_name(msg.get("exc_info")),
        )
    template = str(msg)
    if not _WORD.search(_PLACEHOLDER.sub("", template)):
        try:
            template = record.getMessage()[:300]
        except Exception:  # malformed args: the handler reports it; keep the template
            pass
    return (record.name, record.levelno, template, _exc_type_name(record.exc_info))


def _first_copy(record: logging.LogRecord) -> logging.LogRecord:
    """A frozen copy to write again as the summary: no traceback, same fields."""
    copy = logging.makeLogRecord(record.__dict__)
    copy.exc_info = copy.exc_text = copy.stack_info = None
    if isinstance(copy.msg, dict):
        # structlog entries already carry their bound contextvars.
        copy.msg = {k: v for k, v in copy.msg.items() if k not in ("exc_info", "stack_info")}
    else:
        try:  # render now: args may be mutable objects that change before the summary
            copy.msg, copy.args = record.getMessage(), None
        except Exception:
            pass
        # Foreign records get contextvars when formatted, and the summary may be formatted
        # on another thread or task: keep the first record's.
        setattr(copy, CONTEXT_ATTR, structlog.contextvars.get_contextvars())
    return copy


class CollapseFilter(logging.Filter):
    """Handler filter; summaries are written through `sink` (normally that handler)."""

    def __init__(
        self,
        window_s: float,
        sink: Callable[[logging.LogRecord], object],
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1_000,
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self._sink = sink
        self._clock = clock
        self._max_keys = max_keys
        self._lock = threading.Lock()  # libraries may log from executor threads
        self._windows: OrderedDict[Key, _Window] = OrderedDict()  # oldest window first

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.levelno < logging.WARNING
            or self.window_s <= 0
            or getattr(record, REPEATED_ATTR, None) is not None
        ):
            return True
        key = record_key(record)
        now = self._clock()
        summaries: list[logging.LogRecord] = []
        with self._lock:
            window = self._windows.get(key)
            if window is not None and now - window.opened < self.window_s:
                window.suppressed += 1
                return False
            if window is not None:
                del self._windows[key]
                summaries += _summary(window)
            self._windows[key] = _Window(opened=now, first=_first_copy(record))
            while len(self._windows) > self._max_keys:
                summaries += _summary(self._windows.popitem(last=False)[1])
        self._write(summaries)
        return True

    def flush(self, *, force: bool = False) -> None:
        """Write the count of every ended window (of every open one when `force`)."""
        now = self._clock()
        summaries: list[logging.LogRecord] = []
        with self._lock:
            ended = [
                k for k, w in self._windows.items() if force or now - w.opened >= self.window_s
            ]
            for key in ended:
                summaries += _summary(self._windows.pop(key))
        self._write(summaries)

    def _write(self, summaries: list[logging.LogRecord]) -> None:
        # Outside the lock: the sink runs this filter again (it lets summaries through).
        for record in summaries:
            self._sink(record)


def _summary(window: _Window) -> list[logging.LogRecord]:
    if not window.suppressed:
        return []
    setattr(window.first, REPEATED_ATTR, window.suppressed)
    return [window.first]
