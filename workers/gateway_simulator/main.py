"""Entry point: the producer plus the web app, until `stop` is set or SIGTERM/SIGINT."""

import asyncio
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from aiohttp import web
from aiokafka import AIOKafkaProducer
from tenacity import AsyncRetrying, RetryCallState, stop_after_delay, wait_exponential_jitter

from infra.settings import Settings
from workers.gateway_simulator.api import build_app
from workers.gateway_simulator.config import callback_delay_ms_from_env, listen_address
from workers.gateway_simulator.kafka_sink import kafka_sink
from workers.runtime.kafka import make_producer

log = structlog.get_logger()

CLIENT_ID = "payflow-gateway-simulator"
KAFKA_STARTUP_TIMEOUT_S = 60.0


def _log_kafka_wait(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning("kafka_not_ready", attempt=state.attempt_number, error=repr(exc))


async def _start_producer(settings: Settings) -> AIOKafkaProducer:
    # Services come up in parallel: give Kafka a while before giving up.
    retrying = AsyncRetrying(
        stop=stop_after_delay(KAFKA_STARTUP_TIMEOUT_S),
        wait=wait_exponential_jitter(multiplier=0.5, max=5.0),
        before_sleep=_log_kafka_wait,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            producer = make_producer(settings, CLIENT_ID)
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            return producer
    raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover


@contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread (or no signal support): rely on `stop`
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def serve(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    callback_delay_ms: int | None = None,
) -> None:
    """Run the simulator. Shutdown order: stop HTTP, flush pending callbacks, stop producer."""
    stop = stop or asyncio.Event()
    delay_ms = callback_delay_ms if callback_delay_ms is not None else callback_delay_ms_from_env()
    host, port = listen_address(settings.gateway_url)
    with _stop_on_signals(stop):
        producer = await _start_producer(settings)
        try:
            app = build_app(
                settings.gateway_secret.get_secret_value(), kafka_sink(producer), delay_ms
            )
            runner = web.AppRunner(app)
            await runner.setup()
            try:
                await web.TCPSite(runner, host, port).start()
                log.info(
                    "gateway_simulator_listening",
                    host=host,
                    port=port,
                    callback_delay_ms=delay_ms,
                    kafka=settings.kafka_bootstrap,
                )
                await stop.wait()
                log.info("gateway_simulator_stopping")
            finally:
                await runner.cleanup()  # the app's on_cleanup flushes pending callbacks
        finally:
            await producer.stop()
    log.info("gateway_simulator_stopped")
