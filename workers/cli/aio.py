"""Running a command's coroutine so that SIGINT and SIGTERM stop it cleanly.

A signal cancels the command's task: its finally blocks run (the demo stops its workers,
connections close), then Interrupted reports the signal (exit 130 or 143). A second signal
does not cut that clean-up short. A library can swallow the cancellation (aiokafka's client
close suppresses CancelledError while it awaits its own task; Python 3.11's wait_for can
drop one that races its result): a long command's loops call `stop_if_signalled`, and a
command that returns after a signal still reports it. `payflow run` installs its own
handlers (a graceful stop that lets the batch in flight commit), which take precedence.

`in_daemon_thread` runs blocking work (starting the local services) without making a
signal wait for it.
"""

import asyncio
import signal
import threading
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any, TypeVar

import uvloop

from workers.cli.failures import Interrupted
from workers.runtime.gc_tuning import tune_collector

T = TypeVar("T")
SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received: list[int] = []  # the signal that stops the running command, once received


def stop_if_signalled() -> None:
    """Raise CancelledError if a signal asked the command to stop (its cancellation may have
    been swallowed on the way)."""
    if _received:
        raise asyncio.CancelledError


async def _guarded(work: Coroutine[Any, Any, T]) -> T:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    _received.clear()  # a command before this one in the same process was signalled

    def on_signal(signum: int) -> None:
        if not _received:
            _received.append(signum)
            task.cancel()

    # A signal ignored by whoever started us (nohup, a background job) stays ignored.
    handled = [sig for sig in SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN]
    for sig in handled:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        result = await work
    except asyncio.CancelledError:
        if _received:
            raise Interrupted(_received[0]) from None
        raise
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
    if _received:  # the cancellation was swallowed below us: the signal still decides
        raise Interrupted(_received[0])
    return result


def run_async(work: Coroutine[Any, Any, T]) -> T:
    # uvloop: the same asyncio API on libuv, measurably cheaper per message (docs/performance.md).
    tune_collector()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_guarded(work))


async def in_daemon_thread(fn: Callable[[], T]) -> T:
    """Run blocking fn off the event loop. Unlike asyncio.to_thread, a signal does not wait
    for it to finish: the thread dies with the process (the demo's services start detached,
    and their pid files let the next `payflow services up` reuse them)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def deliver(settle: Callable[[], None]) -> None:
        def apply() -> None:
            if not done.done():  # the awaiting task may have been cancelled meanwhile
                settle()

        try:
            loop.call_soon_threadsafe(apply)
        except RuntimeError:
            pass  # the loop is closed: nobody waits any more

    def work() -> None:
        try:
            result = fn()
        except BaseException as exc:
            deliver(partial(done.set_exception, exc))
        else:
            deliver(partial(done.set_result, result))

    threading.Thread(target=work, name="payflow-blocking", daemon=True).start()
    return await done
