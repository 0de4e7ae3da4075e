"""Settlement reads a batch's successful payments at once, for the orders that have one
event in the batch; an order decided twice in one batch reads for itself, so its second
decision finds the first one's sale and changes nothing."""

import uuid

import aiohttp
import asyncpg
import pytest
from redis.asyncio import Redis

from contracts.codec import decode
from contracts.envelope import Envelope
from contracts.events.outcomes import OrderSettled
from contracts.events.payments import PaymentSucceeded
from infra.settings import Settings
from tests.support.pipeline import (
    assert_audit_clean,
    balances,
    consumed,
    fund_wallet,
    order_state,
    order_submitted,
    seed_catalogue,
)
from workers.app import build_stage
from workers.ledger import accounts
from workers.runtime.batch import run_batch
from workers.runtime.outbox import Message
from workers.settlement.step import Settlement

pytestmark = pytest.mark.integration


def _events(messages: list[Message]) -> list[Envelope]:
    return [
        decode(m.topic, m.value)
        for m in messages
        if m.value is not None and not m.topic.endswith(".dlq")
    ]


async def test_a_batch_with_an_order_decided_twice_settles_each_order_once(
    services: Settings, pool: asyncpg.Pool
) -> None:
    await seed_catalogue(pool)
    run = uuid.uuid4().hex[:8]
    buyer = f"sb-{run}"
    await fund_wallet(pool, buyer, 1_000_000, f"sb-topup:{buyer}")
    orders = [
        order_submitted(f"sb-{run}-{i}", buyer, {"sku-mug": 1 + i}, "wallet_only") for i in range(3)
    ]
    redis = Redis.from_url(services.redis_url)
    async with aiohttp.ClientSession() as http:
        events: list[Envelope] = list(orders)
        for name in ("order_build", "fund_freeze", "gateway_request"):
            stage = build_stage(name, services, pool, redis, http)
            done = await run_batch(pool, stage, [consumed(e, i) for i, e in enumerate(events)], 1)
            events = _events(done.messages)
    await redis.aclose()
    paid = [e for e in events if isinstance(e, PaymentSucceeded)]
    assert len(paid) == 3
    twice = paid[0].model_copy(update={"event_id": uuid.uuid4()})  # decided again

    batch = [paid[0], twice, paid[1], paid[2]]
    settlement = Settlement()
    done = await run_batch(pool, settlement, [consumed(e, i) for i, e in enumerate(batch)], 1)

    assert (done.processed, len(done.dead)) == (4, 0)
    settled = [e for e in _events(done.messages) if isinstance(e, OrderSettled)]
    assert sorted(e.correlation_id for e in settled) == sorted(o.correlation_id for o in orders)
    for o in orders:
        assert await order_state(pool, o.correlation_id) == "settled"
    postings = await pool.fetchval(
        "SELECT count(*) FROM ledger_transactions WHERE kind = 'purchase' AND order_id LIKE $1",
        f"sb-{run}-%",
    )
    assert postings == 3
    spent = sum(p.payload.total.amount for p in paid)
    wallet = accounts.wallet(buyer, "EUR").account_id
    assert await balances(pool, wallet) == (1_000_000 - spent, 1_000_000 - spent, 0)
    await assert_audit_clean(pool)
