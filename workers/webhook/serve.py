"""`payflow run webhook`: serve the webhook on settings.webhook_url until `stop` is set, pruning
its tables past the retention meanwhile (workers/webhook/retention.py)."""

import asyncio
import errno
from contextlib import AsyncExitStack, suppress

import structlog
from aiohttp import web

from infra.settings import Settings
from workers.runtime.db import create_pool
from workers.runtime.health_server import PortInUse
from workers.runtime.kafka import make_producer
from workers.runtime.urls import listen_address
from workers.webhook.app import Webhook, build_app
from workers.webhook.retention import prune_forever

log = structlog.get_logger()


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Accept callbacks until `stop`; Kafka, Postgres or the port failing at start raises."""
    # We serve the URL gateways post to.
    host, port, path = listen_address(settings.webhook_url, "PAYFLOW_WEBHOOK_URL")
    async with AsyncExitStack() as stack:
        pool = await create_pool(settings, max_size=20)
        stack.push_async_callback(pool.close)
        producer = make_producer(settings, client_id="payflow-webhook")
        stack.push_async_callback(producer.stop)  # also after a failed start
        await producer.start()
        webhook = Webhook(settings, pool, producer)
        stack.push_async_callback(webhook.receipts.idle)  # after the last request, before Kafka
        runner = web.AppRunner(build_app(webhook, path), access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)  # stops taking requests before the rest
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"webhook port {host}:{port} is already in use; stop what holds it or set "
                    "PAYFLOW_WEBHOOK_URL to a free port"
                ) from exc
            raise
        log.info("webhook_listening", host=host, port=port, path=path or "/")
        pruner = asyncio.create_task(prune_forever(pool, settings))
        stack.push_async_callback(_cancelled, pruner)  # before the pool closes
        await stop.wait()
        log.info("webhook_stopping")


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
