"""Gateway request handles its batch at once (one statement per table): wallet-only orders
are paid, an order's FundsFrozen delivered twice under two event ids (in one batch, or in a
later one) is paid once, and card orders wait for their callback in 'payment_requested'."""

import uuid

import aiohttp
import asyncpg
import pytest
from redis.asyncio import Redis

from contracts.events.funds import FundsFrozen
from contracts.events.payments import PaymentSucceeded
from infra.settings import Settings
from tests.support.pipeline import (
    consumed,
    fund_wallet,
    order_state,
    order_submitted,
    published,
    seed_catalogue,
    through_stages,
)
from workers.app import build_stage
from workers.runtime.batch import run_batch

pytestmark = pytest.mark.integration


async def test_a_batch_pays_each_wallet_order_once_and_requests_the_rest(
    services: Settings, pool: asyncpg.Pool
) -> None:
    await seed_catalogue(pool)
    run = uuid.uuid4().hex[:8]
    buyer = f"gr-{run}"
    await fund_wallet(pool, buyer, 1_000_000, f"gr-topup:{buyer}")
    wallet = [
        order_submitted(f"gr-{run}-w{i}", buyer, {"sku-mug": 1}, "wallet_only") for i in range(3)
    ]
    card = [
        order_submitted(f"gr-{run}-c{i}", buyer, {"sku-mug": 1}, "gateway_only") for i in range(2)
    ]
    events = await through_stages(services, pool, [*wallet, *card], ("order_build", "fund_freeze"))
    frozen = [e for e in events if isinstance(e, FundsFrozen)]
    assert len(frozen) == 5
    again = frozen[0].model_copy(update={"event_id": uuid.uuid4()})
    redis = Redis.from_url(services.redis_url)
    async with aiohttp.ClientSession() as http:
        gateway_request = build_stage("gateway_request", services, pool, redis, http)
        batch = [*frozen, again]
        done = await run_batch(
            pool, gateway_request, [consumed(e, i) for i, e in enumerate(batch)], 1
        )
        later = frozen[1].model_copy(update={"event_id": uuid.uuid4()})
        done_later = await run_batch(pool, gateway_request, [consumed(later, 0)], 1)
    await redis.aclose()

    assert (done.processed, len(done.dead)) == (6, 0)
    paid = [e.correlation_id for e in published(done.messages) if isinstance(e, PaymentSucceeded)]
    assert sorted(paid) == sorted(o.correlation_id for o in wallet)
    assert published(done_later.messages) == []
    for o in wallet:
        assert await order_state(pool, o.correlation_id) == "paid"
    for o in card:  # the simulator accepted: the callback decides
        assert await order_state(pool, o.correlation_id) == "payment_requested"
        status = await pool.fetchval(
            "SELECT status FROM payment_requests WHERE order_id = $1", o.correlation_id
        )
        assert status in ("pending", "unknown")
