"""Delivers each charge's callback(s) after the configured delay, retrying until delivered."""

import asyncio
from datetime import UTC, datetime

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_exponential_jitter,
)

from contracts.events.gateway import GatewayCallbackReceived
from workers.gateway_simulator.callbacks import (
    CallbackSink,
    callback_body,
    new_callback_id,
    received_event,
)
from workers.gateway_simulator.models import Charge

log = structlog.get_logger()


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning(
        "callback_publish_retry",
        attempt=state.attempt_number,
        next_wait_s=round(state.upcoming_sleep, 3),
        error=repr(exc),
    )


class CallbackDispatcher:
    def __init__(
        self,
        secret: str,
        sink: CallbackSink,
        delay_ms: int,
        *,
        retry_initial_s: float = 0.1,
        retry_max_s: float = 5.0,
        flush_timeout_s: float = 30.0,
    ) -> None:
        if delay_ms < 0:
            raise ValueError(f"callback delay must be >= 0 ms, got {delay_ms}")
        self._secret = secret
        self._sink = sink
        self._delay_s = delay_ms / 1000
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._flush_timeout_s = flush_timeout_s
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def schedule(self, charge: Charge) -> None:
        task = asyncio.create_task(self._run(charge), name=f"callback:{charge.gateway_ref}")
        # Keep a strong reference: the loop holds tasks weakly, and flush() needs them.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until every scheduled callback has been delivered (or has given up)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def flush(self) -> None:
        """On shutdown: deliver what is pending, within flush_timeout_s; log what is not."""
        if not self._tasks:
            return
        log.info("callbacks_flushing", pending=len(self._tasks))
        try:
            await asyncio.wait_for(self.drain(), self._flush_timeout_s)
        except TimeoutError:
            for task in list(self._tasks):
                task.cancel()  # each task logs itself as undelivered
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self, charge: Charge) -> None:
        raw_body: str | None = None
        callback_id = new_callback_id()
        try:
            await asyncio.sleep(self._delay_s)
            now = datetime.now(UTC)
            charge.settle(now)  # the gateway's own view changes before it tells us
            raw_body = callback_body(charge, callback_id, now)
            for n in range(charge.outcome.deliveries):
                if n:
                    await asyncio.sleep(self._delay_s)
                event = received_event(self._secret, charge.request.order_id, callback_id, raw_body)
                await self._deliver(event)
                log.info(
                    "callback_sent",
                    callback_id=callback_id,
                    gateway_ref=charge.gateway_ref,
                    payment_id=charge.request.payment_id,
                    status=charge.outcome.status,
                    delivery=n + 1,
                )
        except asyncio.CancelledError:
            # Never lose a callback silently: enough detail to re-inject it by hand.
            log.error(
                "callback_undelivered",
                callback_id=callback_id,
                gateway_ref=charge.gateway_ref,
                payment_id=charge.request.payment_id,
                order_id=charge.request.order_id,
                raw_body=raw_body,
            )
            raise
        except Exception:
            log.exception(
                "callback_failed",
                callback_id=callback_id,
                gateway_ref=charge.gateway_ref,
                payment_id=charge.request.payment_id,
                raw_body=raw_body,
            )

    async def _deliver(self, event: GatewayCallbackReceived) -> None:
        # The same event (same event_id) is retried, so a send that did land but looked
        # failed is recognised as a duplicate downstream. No stop: a gateway keeps retrying.
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_exponential_jitter(
                multiplier=self._retry_initial_s,
                max=self._retry_max_s,
                jitter=self._retry_initial_s,
            ),
            before_sleep=_log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                await self._sink(event)
