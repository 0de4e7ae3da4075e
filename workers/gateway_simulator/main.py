"""Entry point: the web app on its address until `stop` is set (SIGTERM/SIGINT)."""

import asyncio

import structlog
from aiohttp import web

from workers.gateway_simulator.app import build_app
from workers.gateway_simulator.config import SimConfig

log = structlog.get_logger()


async def serve(cfg: SimConfig, stop: asyncio.Event) -> None:
    if not cfg.loopback:
        log.warning(
            "gateway_simulator_not_loopback",
            host=cfg.host,
            detail="the simulator is reachable from other hosts",
        )
    # No access log: a line per request costs more than the request; the engine logs what
    # happened to each charge (at DEBUG, see docs/gateway-simulator.md).
    runner = web.AppRunner(build_app(cfg), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, cfg.host, cfg.port).start()
        log.info(
            "gateway_simulator_listening",
            host=cfg.host,
            port=cfg.port,
            db=str(cfg.db_path),
            webhook=cfg.webhook_url,
            faults=cfg.faults.describe(),
            seed=cfg.faults.seed,
            callback_delay_ms=cfg.timings.callback_delay_ms,
        )
        await stop.wait()
        log.info("gateway_simulator_stopping")
    finally:
        await runner.cleanup()
    log.info("gateway_simulator_stopped")
