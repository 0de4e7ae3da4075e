"""`payflow run webhook`: serve the webhook on settings.webhook_url until `stop` is set."""

import asyncio
import errno
from contextlib import AsyncExitStack
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from infra.settings import Settings
from workers.runtime.db import create_pool
from workers.runtime.health_server import PortInUse
from workers.runtime.kafka import make_producer
from workers.webhook.app import Webhook, build_app

log = structlog.get_logger()


def listen_address(webhook_url: str) -> tuple[str, int, str]:
    """Host, port and path of the webhook URL: we serve the URL gateways post to."""
    parts = urlsplit(webhook_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"PAYFLOW_WEBHOOK_URL must be http://HOST[:PORT]/PATH: {webhook_url!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"PAYFLOW_WEBHOOK_URL has an invalid port: {webhook_url!r}") from exc
    return parts.hostname, port or (443 if parts.scheme == "https" else 80), parts.path


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Accept callbacks until `stop`; Kafka, Postgres or the port failing at start raises."""
    host, port, path = listen_address(settings.webhook_url)
    async with AsyncExitStack() as stack:
        pool = await create_pool(settings, max_size=20)
        stack.push_async_callback(pool.close)
        producer = make_producer(settings, client_id="payflow-webhook")
        stack.push_async_callback(producer.stop)  # also after a failed start
        await producer.start()
        webhook = Webhook(settings, pool, producer)
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
        await stop.wait()
        log.info("webhook_stopping")
