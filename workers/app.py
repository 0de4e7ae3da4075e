"""Wiring: build the stages with their dependencies and run them until told to stop."""

import asyncio
import signal
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import asyncpg
import structlog
from redis.asyncio import Redis

from contracts.topics import namespace
from infra.settings import Settings
from workers.callback_handling.step import CallbackHandling
from workers.fund_freeze.step import FundFreeze
from workers.gateway.http import gateway_session
from workers.gateway.registry import Gateways
from workers.gateway_request.step import GatewayRequest
from workers.order_build.step import OrderBuild
from workers.runtime.consumer import StageRunner
from workers.runtime.db import create_pool
from workers.runtime.health import Dependencies, Health
from workers.runtime.health_server import PortInUse, start_health_server
from workers.runtime.kafka import make_producer
from workers.runtime.probes import probe_services
from workers.runtime.stage import Stage
from workers.settlement.step import Settlement
from workers.stage_names import STAGE_NAMES
from workers.wallet.step import WalletOperations

log = structlog.get_logger()


# Dependencies beyond Kafka and Postgres, per stage: only these make it unhealthy when down.
NEEDS = {"callback_handling": frozenset({"kafka", "postgres", "redis"})}


def build_stage(
    name: str, settings: Settings, pool: asyncpg.Pool, redis: Redis, http: aiohttp.ClientSession
) -> Stage:
    gateways = Gateways(settings, http)
    factories: dict[str, Callable[[], Stage]] = {
        "order_build": OrderBuild,
        "fund_freeze": FundFreeze,
        "gateway_request": lambda: GatewayRequest(pool, gateways, settings),
        "callback_handling": lambda: CallbackHandling(
            redis, settings.signing_keys, settings.callback_tolerance_s
        ),
        "settlement": Settlement,
        "wallet": lambda: WalletOperations(pool, gateways, settings),
    }
    if name not in factories:
        raise ValueError(f"unknown stage {name!r}; stages: {', '.join(STAGE_NAMES)}")
    return factories[name]()


def stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def run_stages(
    names: list[str], settings: Settings, stop: asyncio.Event, health_port: int | None = None
) -> None:
    """Run the named stages in this process; on `stop`, each finishes its batch, commits
    and leaves its group."""
    async with AsyncExitStack() as stack:
        pool = await create_pool(
            settings, max_size=2 + 2 * len(names), application_name=f"payflow:{'+'.join(names)}"
        )
        stack.push_async_callback(pool.close)
        redis = Redis.from_url(settings.redis_url)
        stack.push_async_callback(redis.aclose)
        http = await stack.enter_async_context(gateway_session())
        producer = make_producer(settings, client_id=f"payflow-{'-'.join(names)}")
        await producer.start()
        stack.push_async_callback(producer.stop)
        deps = Dependencies()
        healths = [
            Health(
                n,
                stuck_after_s=settings.stuck_after_s,
                unassigned_after_s=3 * settings.session_timeout_ms / 1000,
                dependencies=deps,
                needs=NEEDS.get(n, Health.needs),
            )
            for n in names
        ]
        base = settings.metrics_port if health_port is None else health_port
        runner, port = await start_health_server(
            healths, deps, namespace(), settings.metrics_host, base
        )
        stack.push_async_callback(runner.cleanup)
        probing = asyncio.create_task(
            probe_services(
                deps,
                pool,
                redis if any("redis" in h.needs for h in healths) else None,
                settings.health_probe_interval_s,
                settings.connect_timeout_s,
                stop,
            )
        )
        stack.callback(probing.cancel)
        runners = [
            StageRunner(build_stage(n, settings, pool, redis, http), settings, pool, producer, h)
            for n, h in zip(names, healths, strict=True)
        ]
        log.info(
            "workers_started", stages=names, health_port=port, health_host=settings.metrics_host
        )
        await asyncio.gather(*(r.run(stop) for r in runners))


async def run_all(settings: Settings, stop: asyncio.Event, health_port: int) -> None:
    """`payflow run all`: every stage, the webhook and the sweeper in one process. If one of
    them fails the others are stopped and the failure is raised. Replicas of `run all` each
    run a sweeper: its task keys make sure two never do the same work."""
    from workers.sweeper.serve import serve as serve_sweeper
    from workers.webhook.serve import serve as serve_webhook

    async def webhook() -> None:
        try:
            await serve_webhook(settings, stop)
        except PortInUse as exc:
            # Another replica of `run all` serves the webhook on this host: one is enough.
            log.warning("webhook_not_started", reason=str(exc))

    await _together(
        [
            run_stages(list(STAGE_NAMES), settings, stop, health_port=health_port),
            webhook(),
            serve_sweeper(settings, stop),
        ],
        stop,
    )


async def _together(jobs: list[Coroutine[Any, Any, None]], stop: asyncio.Event) -> None:
    tasks = [asyncio.ensure_future(j) for j in jobs]
    try:
        for done in asyncio.as_completed(tasks):
            try:
                await done
            except BaseException:
                stop.set()  # the others finish their work and return
                raise
    finally:
        await asyncio.gather(*tasks, return_exceptions=True)
