"""The simulator's clock: settles what is due and delivers due callbacks, retrying with
exponential backoff and jitter (never giving up) until the webhook takes each one.

Everything it works from is in SQLite, so after a restart it resumes where it stopped.
"""

import asyncio
import random
import sqlite3
import time

import aiohttp
import structlog

from workers.gateway_simulator import callback_queue, keys
from workers.gateway_simulator.callback_queue import Callback
from workers.gateway_simulator.config import SimConfig
from workers.gateway_simulator.records import next_due
from workers.gateway_simulator.sender import Result, send
from workers.gateway_simulator.settle import settle_due
from workers.gateway_simulator.writes import Writes
from workers.runtime.logs import debug_enabled

log = structlog.get_logger()

MAX_IN_FLIGHT = 32
IDLE_WAKE_S = 1.0
PRUNE_EVERY_S = 3600.0


def backoff_s(attempts: int, initial_s: float, max_s: float) -> float:
    """Exponential, capped, with jitter over the upper half (so retries spread out)."""
    base: float = min(max_s, initial_s * 2.0 ** min(attempts, 30))
    return base / 2 + random.uniform(0, base / 2)


class Dispatcher:
    def __init__(self, conn: sqlite3.Connection, cfg: SimConfig, writes: Writes) -> None:
        self.conn, self.cfg, self.writes = conn, cfg, writes
        self._wake = asyncio.Event()
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._last_prune = 0.0

    def poke(self) -> None:
        self._wake.set()

    @property
    def pending(self) -> int:
        return callback_queue.pending_count(self.conn)

    async def run(self, session: aiohttp.ClientSession) -> None:
        resumed = self.pending
        if resumed:
            log.info("callbacks_resumed", pending=resumed)
        try:
            while True:
                try:
                    self._tick(session)
                except Exception:  # never stop dispatching: log, pause, go on
                    log.exception("dispatcher_error")
                    await asyncio.sleep(IDLE_WAKE_S)
                await self._sleep()
        finally:
            for task in self._in_flight.values():
                task.cancel()  # still pending in the queue: sent after the next start
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)

    def _tick(self, session: aiohttp.ClientSession) -> None:
        now = time.time()
        self.writes.fresh()  # deliveries started below wait for this tick's writes only
        if now - self._last_prune > PRUNE_EVERY_S:
            self._prune(now)
        settle_due(self.conn, self.cfg, now, self.writes)
        room = MAX_IN_FLIGHT - len(self._in_flight)
        if room <= 0:
            return
        for cb in callback_queue.due(self.conn, now, limit=room + len(self._in_flight)):
            if cb.seq in self._in_flight or len(self._in_flight) >= MAX_IN_FLIGHT:
                continue
            task = asyncio.create_task(self._deliver(session, cb), name=f"callback:{cb.seq}")
            self._in_flight[cb.seq] = task
            task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        for seq, running in list(self._in_flight.items()):
            if running is task:
                del self._in_flight[seq]
        self._wake.set()

    async def _sleep(self) -> None:
        busy = list(self._in_flight)
        if len(busy) >= MAX_IN_FLIGHT:
            busy = []  # full: wait for a delivery to finish (it wakes us), or a second
        times = [t for t in (next_due(self.conn), callback_queue.next_due(self.conn, busy)) if t]
        wait = min([IDLE_WAKE_S, *(t - time.time() for t in times)])
        if wait > 0 or len(self._in_flight) >= MAX_IN_FLIGHT:
            try:
                await asyncio.wait_for(self._wake.wait(), max(wait, 0.0) or IDLE_WAKE_S)
            except TimeoutError:
                pass
        else:
            await asyncio.sleep(0)  # let deliveries and requests run
        self._wake.clear()

    def _prune(self, now: float) -> None:
        self._last_prune = now
        older = now - self.cfg.timings.key_retention_h * 3600
        gone = self.writes.run(lambda: keys.prune(self.conn, older))
        if gone:
            log.info("idempotency_keys_pruned", count=gone)

    async def _deliver(self, session: aiohttp.ClientSession, cb: Callback) -> None:
        try:
            await self.writes.durable()  # the row that announces it may be in the open group
        except sqlite3.Error:
            return  # it was never committed: there is nothing to send
        result = await send(session, self.cfg, cb)
        now = time.time()
        wait = self.writes.run(lambda: self._record(cb, result, now))
        where = {
            "callback_id": cb.callback_id,
            "provider": cb.provider,
            "kind": cb.kind,
            "payment_id": cb.payment_id,
            "reference": cb.reference,
            "attempt": cb.attempts + 1,
            "status": result.status,
        }
        if result.verdict == "delivered":
            if debug_enabled():
                log.debug("callback_delivered", bad_signature=cb.wrong_key, **where)
        elif result.verdict == "rejected":
            log.error("callback_rejected", body=result.detail, **where)
        else:
            log.warning("callback_retry", error=result.detail, next_wait_s=round(wait, 3), **where)

    def _record(self, cb: Callback, result: Result, now: float) -> float:
        """The attempt's outcome (committed with the group: if that is lost, the callback is
        sent again, as it would be after a crash before this); the wait before a retry."""
        if result.verdict == "delivered":
            callback_queue.delivered(self.conn, cb.seq, now)
        elif result.verdict == "rejected":
            callback_queue.rejected(self.conn, cb.seq, f"{result.status}: {result.detail}")
        else:
            t = self.cfg.timings
            wait = backoff_s(cb.attempts, t.retry_initial_ms / 1000, t.retry_max_ms / 1000)
            callback_queue.retry_at(self.conn, cb.seq, now + wait, result.detail)
            return wait
        return 0.0
