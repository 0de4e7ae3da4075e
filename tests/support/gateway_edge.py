"""Tests of the gateway edge: the simulator as a process with its registry, and the whole
money pipeline (simulator, webhook, stages, sweeper) in the test's process with small
timings."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aiohttp
import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from redis.asyncio import Redis

from contracts.events.orders import OrderSubmitted
from infra.settings import Settings
from tests.support.pipeline import eventually, order_state, simulator
from workers.callback_handling.step import CallbackHandling
from workers.fund_freeze.step import FundFreeze
from workers.gateway.registry import Gateways
from workers.gateway_request.step import GatewayRequest
from workers.order_build.step import OrderBuild
from workers.runtime.consumer import StageRunner
from workers.runtime.health import Health
from workers.settlement.step import Settlement
from workers.sweeper.serve import serve as sweeper
from workers.webhook.serve import serve as webhook


async def simulator_up(settings: Settings) -> bool:
    try:
        async with (
            aiohttp.ClientSession() as s,
            s.get(f"{settings.gateway_url}/healthz", timeout=aiohttp.ClientTimeout(1)) as r,
        ):
            return r.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


@asynccontextmanager
async def gateway(settings: Settings, env: dict[str, str]) -> AsyncIterator[Gateways]:
    """The simulator as a process, and the registry our stages use, pointed at it."""
    async with simulator(settings, env), aiohttp.ClientSession() as http:
        await eventually(lambda: simulator_up(settings), 30, "simulator answering /healthz")
        yield Gateways(settings, http)


# Small settings: a few seconds for everything the sweeper waits on.
FAST: dict[str, Any] = {
    "gateway_timeout_s": 1.0,
    "gateway_attempts": 2,
    "sweeper_schedule_s": "0.5,1,2",
    "sweeper_interval_s": 0.3,
    "callback_grace_s": 3.0,
    "payment_window_s": 600,
    # Off: these tests watch what callbacks and status queries do (test_statement_sweep.py
    # tests the statement sweep on a simulator of its own).
    "statement_sweep_s": 0.0,
}


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def partition_of(key: str, partitions: int) -> int:
    return int(murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def with_method(order: OrderSubmitted, method: str) -> OrderSubmitted:
    payload = order.payload.model_copy(update={"payment_method": method})
    return order.model_copy(update={"payload": payload})


@asynccontextmanager
async def pipeline(
    services: Settings,
    pool: asyncpg.Pool,
    producer: AIOKafkaProducer,
    sim_env: dict[str, str] | None,
    sweeping: bool = True,
    without: tuple[str, ...] = (),
    **overrides: Any,
) -> AsyncIterator[Settings]:
    """The simulator (None: no gateway at all), webhook, stages (but those `without`) and
    sweeper, until the end."""
    settings = services.model_copy(update={**FAST, **overrides})
    stop = asyncio.Event()
    async with AsyncExitStack() as stack:
        if sim_env is not None:
            # The session's simulator database, as one third party would keep its records:
            # a refund or charge one test leaves pending is still known to the next test's
            # sweeper, which would otherwise be told the gateway never heard of it.
            env = dict(sim_env)
            await stack.enter_async_context(simulator(settings, env))
            await eventually(lambda: simulator_up(settings), 30, "simulator answering")
        http = await stack.enter_async_context(aiohttp.ClientSession())
        redis = Redis.from_url(settings.redis_url)
        stack.push_async_callback(redis.aclose)
        stages = [
            OrderBuild(),
            FundFreeze(),
            GatewayRequest(pool, Gateways(settings, http), settings),
            CallbackHandling(redis, settings.signing_keys, settings.callback_tolerance_s),
            Settlement(),
        ]
        tasks = [
            asyncio.create_task(StageRunner(s, settings, pool, producer, Health(s.name)).run(stop))
            for s in stages
            if s.name not in without
        ]
        tasks.append(asyncio.create_task(webhook(settings, stop)))
        if sweeping:
            tasks.append(asyncio.create_task(sweeper(settings, stop)))
        try:
            yield settings
        finally:
            stop.set()
            await asyncio.gather(*tasks)


async def gateway_charges(settings: Settings, payment_id: str) -> list[str]:
    """The succeeded charges the gateway holds for our payment, as it reports them (asked
    through the direct adapter: the simulator answers for every payment it charged)."""
    async with aiohttp.ClientSession() as http:
        charges = await Gateways(settings, http).adapter("direct").query_payment(payment_id)
    return [c.gateway_ref for c in charges if c.status == "succeeded"]


async def payment(pool: asyncpg.Pool, order_id: str) -> asyncpg.Record:
    row: asyncpg.Record = await pool.fetchrow(
        "SELECT * FROM payment_requests WHERE order_id = $1", order_id
    )
    return row


async def reaches(pool: asyncpg.Pool, order_id: str, state: str, timeout_s: float = 60) -> None:
    async def check() -> bool:
        return await order_state(pool, order_id) == state

    await eventually(check, timeout_s, f"order {order_id} {state}")


async def plant_payment(
    conn: asyncpg.Connection,
    *,
    order_id: str,
    transaction_id: str,
    payment_id: str,
    order_state: str,
    status: str,
    buyer: str,
    gateway_ref: str | None = None,
) -> None:
    """A gateway-only order of 5.00 EUR with its payment request in `status` (with the ref a
    create answer named, if given), written straight to the tables: for tests of the
    decision path without the stages before it."""
    await conn.execute(
        """INSERT INTO orders (order_id, buyer_id, currency, payment_preference, subtotal,
               discount, total, request_digest, state)
           VALUES ($1, $2, 'EUR', 'gateway_only', 0, 0, 0, 'test', $3)""",
        order_id,
        buyer,
        order_state,
    )
    await conn.execute(
        """INSERT INTO transactions (transaction_id, order_id, buyer_id, currency, total,
               wallet_part, gateway_part, status)
           VALUES ($1, $2, $3, 'EUR', 0, 0, 0, 'pending_payment')""",
        transaction_id,
        order_id,
        buyer,
    )
    await conn.execute(
        """INSERT INTO payment_requests (payment_id, transaction_id, order_id, attempt,
               idempotency_key, currency, amount, status, request_body, gateway_ref)
           VALUES ($1, $2, $3, 1, $1, 'EUR', 500, $4, '{}', $5)""",
        payment_id,
        transaction_id,
        order_id,
        status,
        gateway_ref,
    )
