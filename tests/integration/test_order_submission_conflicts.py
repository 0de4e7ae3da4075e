"""Upstream idempotency of order.submitted: submissions that are refused. The same key with
another cart is an idempotency_key_conflict, an order id reused with other content an
order_id_conflict; each is answered with order.submission_refused (not dead-lettered),
recorded in order_submission_conflicts, and leaves the first order and its key as they were.
Against the real Kafka and Postgres: real events through the order_build stage, outcomes
read from what it published."""

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from contracts.events.outcomes import OrderSubmissionRefused
from infra.settings import Settings
from tests.support.orders_idempotency import (
    conflicts,
    count,
    key_owner,
    outcomes,
    published_key,
    rows_with,
    stock_held,
    submission,
    submit_in_turn,
    uid,
)
from tests.support.pipeline import order_state, seed_catalogue

pytestmark = pytest.mark.integration


async def test_same_key_other_cart_is_refused_and_recorded_the_first_order_untouched(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    key = uid("shop-1:cart")
    first = submission(uid("idem-a"), key)
    other = submission(uid("idem-b"), key, {"sku-cap": 1})
    await submit_in_turn(services, pool, producer, first, other)

    [answer] = await outcomes(pool, other.correlation_id)
    assert isinstance(answer, OrderSubmissionRefused)
    assert answer.payload.reason_code == "idempotency_key_conflict"
    assert answer.payload.order_id == other.correlation_id
    assert answer.payload.original_order_id == first.correlation_id
    assert answer.payload.idempotency_key == key
    assert answer.payload.refused_event_id == answer.causation_id == other.event_id
    assert first.correlation_id in answer.payload.detail
    assert await published_key(services, answer.event_id) == other.correlation_id.encode()
    assert await order_state(pool, other.correlation_id) is None
    assert await stock_held(pool, other.correlation_id) == 0
    assert await order_state(pool, first.correlation_id) == "built"
    assert await stock_held(pool, first.correlation_id) == 2
    assert await outcomes(pool, first.correlation_id) == []
    [row] = await conflicts(pool, other.correlation_id)
    assert row["reason_code"] == "idempotency_key_conflict"
    assert row["idempotency_key"] == key
    assert (row["existing_order_id"], row["existing_event_id"]) == (
        first.correlation_id,
        first.event_id,
    )
    assert row["event_id"] == other.event_id
    assert row["request_digest"] != row["existing_digest"]
    assert await key_owner(pool, key) == first.correlation_id  # the key stays the first's


async def test_an_order_id_reused_with_other_content_is_refused_not_dead_lettered(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    order_id = uid("idem-r")
    first = submission(order_id, uid("shop-1:cart"))
    reused = submission(order_id, uid("shop-1:cart"), {"sku-cap": 3})
    await submit_in_turn(services, pool, producer, first, reused)

    [answer] = await outcomes(pool, order_id)  # no order.rejected for an existing order
    assert isinstance(answer, OrderSubmissionRefused)
    assert answer.payload.reason_code == "order_id_conflict"
    assert answer.causation_id == reused.event_id  # the refused submission, not the order
    assert answer.payload.refused_event_id == reused.event_id
    assert answer.payload.order_id == answer.payload.original_order_id == order_id
    assert answer.payload.idempotency_key == reused.idempotency_key
    assert await rows_with(pool, "dead_letters", "order_id", order_id) == 0
    assert await order_state(pool, order_id) == "built"
    assert await count(pool, "SELECT total FROM orders WHERE order_id = $1", order_id) == 3000
    assert await stock_held(pool, order_id) == 2
    [row] = await conflicts(pool, order_id)
    assert row["reason_code"] == "order_id_conflict"
    assert (row["existing_order_id"], row["existing_event_id"]) == (order_id, first.event_id)
    assert await key_owner(pool, reused.idempotency_key) is None  # a refusal claims no key
