"""Every write of the simulator, committed in groups.

A write runs synchronously (no await inside, so a check-then-insert never interleaves with
another request) in its own savepoint of the group transaction open on this pass of the
event loop; the group is committed once that pass is over. Under load a pass handles many
requests and deliveries, and one commit writes the pages they share once (a commit per
charge cost about a fifth of the simulator's CPU). Nothing written is announced before its
commit: an HTTP answer waits for it (`durable`, in the app's middleware), and a callback is
sent only once the row announcing it is committed, so a kill -9 still loses nothing that was
answered or sent.
"""

import asyncio
import sqlite3
from collections.abc import Callable
from contextvars import ContextVar
from typing import TypeVar

import structlog

log = structlog.get_logger()

T = TypeVar("T")

# The group the current task (an HTTP request, a delivery) last wrote in: if that group is
# lost, the task is told so even after another group has begun.
_written: ContextVar["asyncio.Future[None] | None"] = ContextVar("simulator_written", default=None)


class Writes:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._group: asyncio.Future[None] | None = None
        self.runs = 0  # writes run so far: unchanged, nothing was written meanwhile

    def run(self, work: Callable[[], T]) -> T:
        """`work`'s SQL in the open group (one is begun if none is); if it raises, its own
        writes are undone and the rest of the group stands."""
        if self._group is None:
            self.conn.execute("BEGIN IMMEDIATE")
            loop = asyncio.get_running_loop()
            self._group = loop.create_future()
            loop.call_soon(self.flush)
        group = self._group
        _written.set(group)
        self.runs += 1
        self.conn.execute("SAVEPOINT write")
        try:
            out = work()
        except BaseException as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK TO write")
                self.conn.execute("RELEASE write")
            else:  # SQLite rolled the whole group back (disk full, I/O error)
                self._settle(group, exc)
            raise
        self.conn.execute("RELEASE write")
        return out

    def fresh(self) -> None:
        """Forget the group this task wrote in before: a task serves many requests (one
        kept-alive connection), and the dispatcher many ticks; each waits only for its own."""
        _written.set(None)

    async def durable(self) -> None:
        """Return once what this task wrote, and everything written so far, is committed;
        raise if it never will be."""
        for group in (_written.get(), self._group):
            if group is not None:
                await asyncio.shield(group)

    def flush(self) -> None:
        """Commit the open group: at the end of its pass, or at shutdown before the
        connection closes."""
        group = self._group
        if group is None:
            return  # nothing open: flushed already, or lost in its pass
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            self._settle(group, exc)
            return
        self._settle(group, None)

    def _settle(self, group: asyncio.Future[None], failure: BaseException | None) -> None:
        if self._group is group:
            self._group = None
        if group.done():
            return
        if failure is None:
            group.set_result(None)
            return
        log.error("simulator_write_failed", error=f"{type(failure).__name__}: {failure}")
        group.set_exception(failure)
        group.add_done_callback(lambda f: f.exception())  # told to whoever waits, if anyone
