"""Upstream idempotency of order.submitted: a submission the shop sends again. Under a new
order id with the same key and cart it is answered with order.duplicate naming the first
order; the same message redelivered, or re-sent as a new message, has no second effect; and
through the whole pipeline the original settles once while a replay and two conflicting
submissions are answered. Against the real Kafka and Postgres: real events through the
order_build stage (in-process, or every worker as processes), outcomes read from what it
published. Refused submissions are in test_order_submission_conflicts.py, how keys are
claimed, kept and pruned in test_order_idempotency_keys.py."""

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from contracts.events.outcomes import OrderDuplicate, OrderSubmissionRefused
from infra.settings import Settings
from tests.support.orders_idempotency import (
    conflicts,
    count,
    event_types,
    outcomes,
    processed,
    published_key,
    rows_with,
    sent_again,
    stock_held,
    submission,
    submit_in_turn,
    uid,
)
from tests.support.pipeline import (
    assert_audit_clean,
    eventually,
    fund_wallet,
    order_state,
    publish,
    seed_catalogue,
    simulator,
    start_workers,
)

pytestmark = pytest.mark.integration


async def test_same_key_same_cart_new_order_id_is_answered_with_the_first_order(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    key = uid("shop-1:cart")
    first, retry = submission(uid("idem-a"), key), submission(uid("idem-b"), key)
    await submit_in_turn(services, pool, producer, first, retry)

    assert await order_state(pool, first.correlation_id) == "built"
    assert await order_state(pool, retry.correlation_id) is None  # never built nor rejected
    assert await stock_held(pool, first.correlation_id) == 2
    assert await stock_held(pool, retry.correlation_id) == 0  # no second stock hold
    assert await rows_with(pool, "tcc_barrier", "gid", retry.correlation_id) == 0
    [answer] = await outcomes(pool, retry.correlation_id)
    assert isinstance(answer, OrderDuplicate)
    assert answer.payload.original_order_id == first.correlation_id
    assert answer.payload.idempotency_key == key
    assert answer.causation_id == retry.event_id
    assert await conflicts(pool, retry.correlation_id) == []
    # The shop consumes it from the outcomes topic, keyed by its (new) order id.
    assert await published_key(services, answer.event_id) == retry.correlation_id.encode()

    # The retry re-sent once more: it is already answered, nothing new happens.
    resent = sent_again(retry)
    await submit_in_turn(services, pool, producer, resent)
    assert len(await outcomes(pool, retry.correlation_id)) == 1
    both = (first.correlation_id, retry.correlation_id)
    assert await rows_with(pool, "orders", "order_id", *both) == 1


async def test_a_redelivered_submission_has_no_second_effect(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    first = submission(uid("idem-d"), uid("shop-1:cart"))
    await publish(producer, first)  # the same message twice (same event id) ...
    await submit_in_turn(services, pool, producer, first, sent_again(first))  # ... then anew
    order_id = first.correlation_id
    outputs = "SELECT count(*) FROM outbox WHERE producer = 'order_build' AND message_key = $1"
    assert await count(pool, outputs, order_id) == 1  # the one order.built
    assert await stock_held(pool, order_id) == 2
    assert await conflicts(pool, order_id) == []
    assert await rows_with(pool, "order_duplicates", "order_id", order_id) == 0


async def test_the_whole_pipeline_settles_the_original_once_and_the_audit_stays_clean(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    """A replay, a key conflict and an order id conflict while the original order goes
    through every stage: it settles once, the others are answered, nothing else moves."""
    await seed_catalogue(pool)
    buyer = uid("buyer-idem")
    await fund_wallet(pool, buyer, 50_000, f"idem-topup:{buyer}")
    key, cart = uid("shop-1:pipe"), {"sku-tee": 2, "sku-novel": 1}
    first = submission(uid("pipe-a"), key, cart, buyer)
    replay = submission(uid("pipe-b"), key, cart, buyer)
    other_cart = submission(uid("pipe-c"), key, {"sku-cap": 1}, buyer)
    reused_id = submission(first.correlation_id, uid("shop-1:pipe"), {"sku-lamp": 1}, buyer)
    original = first.correlation_id

    async with simulator(services) as children:
        start_workers(children)
        await publish(producer, first)
        await eventually(lambda: processed(pool, first), 90, "the original built")
        for event in (replay, other_cart, reused_id):
            await publish(producer, event)
        await eventually(lambda: _settled(pool, original), 120, f"{original} settled")
        await eventually(lambda: processed(pool, replay, other_cart, reused_id), 60, "answers")

    by_order = {
        o: await outcomes(pool, o)
        for o in (original, replay.correlation_id, other_cart.correlation_id)
    }
    # The original's outcome is order.settled; the reused id's refusal is not an outcome of it.
    assert sorted(event_types(by_order[original])) == ["order.settled", "order.submission_refused"]
    [refused] = [e for e in by_order[original] if isinstance(e, OrderSubmissionRefused)]
    assert refused.payload.reason_code == "order_id_conflict"
    assert refused.causation_id == refused.payload.refused_event_id == reused_id.event_id
    assert refused.payload.original_order_id == original
    [dup] = by_order[replay.correlation_id]
    assert isinstance(dup, OrderDuplicate) and dup.payload.original_order_id == original
    [conflict] = by_order[other_cart.correlation_id]
    assert isinstance(conflict, OrderSubmissionRefused)
    assert conflict.payload.reason_code == "idempotency_key_conflict"
    assert conflict.payload.original_order_id == original
    assert conflict.payload.refused_event_id == other_cart.event_id

    everyone = (original, replay.correlation_id, other_cart.correlation_id)
    assert await rows_with(pool, "ledger_transactions", "order_id", *everyone) == 1  # one posting
    assert await count(pool, "SELECT total FROM orders WHERE order_id = $1", original) == 5500
    stock = "SELECT array_agg(state) FROM stock_holds WHERE order_id = ANY($1)"
    assert await pool.fetchval(stock, everyone) == ["sold", "sold"]  # the original's 2 lines
    assert await rows_with(pool, "dead_letters", "order_id", *everyone) == 0
    assert await rows_with(pool, "order_submission_conflicts", "existing_order_id", original) == 2
    await assert_audit_clean(pool)


async def _settled(pool: asyncpg.Pool, order_id: str) -> bool:
    return await order_state(pool, order_id) == "settled"
