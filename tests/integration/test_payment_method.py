"""An order's payment method travels from submission to the fund freeze (it picks the gateway
adapter later), and a method no adapter serves is rejected at order build, before anything is
held. Real Kafka and Postgres, order_build and fund_freeze running in this process."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from contracts.codec import decode
from contracts.events.funds import FundsFrozen
from contracts.events.orders import OrderBuilt, OrderSubmitted
from contracts.events.outcomes import OrderRejected
from contracts.topics import FUNDS_FROZEN, ORDERS_BUILT
from infra.settings import Settings
from tests.support.orders_idempotency import outcomes, processed, stock_held, uid
from tests.support.pipeline import (
    eventually,
    fund_wallet,
    order_state,
    order_submitted,
    publish,
    seed_catalogue,
)
from workers.fund_freeze.step import FundFreeze
from workers.order_build.step import OrderBuild
from workers.runtime.consumer import StageRunner
from workers.runtime.health import Health

pytestmark = pytest.mark.integration


@asynccontextmanager
async def building_and_freezing(
    settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> AsyncIterator[None]:
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(StageRunner(s, settings, pool, producer, Health(s.name)).run(stop))
        for s in (OrderBuild(), FundFreeze())
    ]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


def _with_method(order: OrderSubmitted, method: str) -> OrderSubmitted:
    payload = order.payload.model_copy(update={"payment_method": method})
    return order.model_copy(update={"payload": payload})


async def _published(pool: asyncpg.Pool, topic: str, order_id: str) -> list[object]:
    rows = await pool.fetch(
        "SELECT message_value FROM outbox WHERE topic = $1 AND message_key = $2",
        topic,
        order_id,
    )
    return [decode(topic, bytes(r[0])) for r in rows]


async def test_payment_method_flows_and_an_unrouted_one_is_rejected(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    buyer = uid("buyer-method")
    await fund_wallet(pool, buyer, 100_000, f"method-test:{buyer}")
    # Wallet only: nothing is left for the gateway stage, which is not running here.
    qr = _with_method(order_submitted(uid("ord-qr"), buyer, {"sku-tee": 1}, "wallet_only"), "qr")
    card = order_submitted(uid("ord-card"), buyer, {"sku-tee": 1}, "wallet_only")
    crypto = _with_method(
        order_submitted(uid("ord-crypto"), buyer, {"sku-tee": 1}, "wallet_only"), "crypto"
    )

    async with building_and_freezing(services, pool, producer):
        for event in (qr, card, crypto):
            await publish(producer, event)
        await eventually(partial(processed, pool, qr, card, crypto), 60, "order build done")

        async def frozen() -> bool:
            states = [await order_state(pool, e.correlation_id) for e in (qr, card)]
            return states == ["funds_frozen", "funds_frozen"]

        await eventually(frozen, 60, "both routed orders frozen")

    for event, method in ((qr, "qr"), (card, "card")):
        order_id = event.correlation_id
        assert (
            await pool.fetchval("SELECT payment_method FROM orders WHERE order_id = $1", order_id)
            == method
        )
        [built] = await _published(pool, ORDERS_BUILT.name, order_id)
        assert isinstance(built, OrderBuilt) and built.payload.payment_method == method
        [funds] = await _published(pool, FUNDS_FROZEN.name, order_id)
        assert isinstance(funds, FundsFrozen) and funds.payload.payment_method == method

    assert await order_state(pool, crypto.correlation_id) == "rejected"
    [answer] = await outcomes(pool, crypto.correlation_id)
    assert isinstance(answer, OrderRejected)
    assert answer.payload.reason_code == "unsupported_payment_method"
    assert "'crypto'" in (answer.payload.detail or "")
    assert await stock_held(pool, crypto.correlation_id) == 0  # nothing held
