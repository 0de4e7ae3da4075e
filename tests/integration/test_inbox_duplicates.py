"""A stage without `prepare` asks the inbox once per batch: its insert (a plain one, then ON
CONFLICT DO NOTHING RETURNING if an event was seen before) tells new events from ones
processed before, and the stored outputs of
the ones processed before are published again, whoever processed them (an earlier delivery
that may have died before its publish, or another consumer during a rebalance). A stage
with a gateway call still asks first, so no gateway is called for an event done before."""

import asyncio
import uuid

import asyncpg
import pytest

from tests.support.pipeline import consumed, order_state, order_submitted, seed_catalogue
from workers.gateway_request.step import GatewayRequest
from workers.order_build.step import OrderBuild
from workers.runtime.batch import run_batch
from workers.runtime.outbox import Message
from workers.runtime.prepare import prepares
from workers.wallet.step import WalletOperations

pytestmark = pytest.mark.integration


def test_only_stages_with_outside_io_ask_the_inbox_before_their_transaction() -> None:
    assert not prepares(OrderBuild)
    assert prepares(GatewayRequest)
    assert prepares(WalletOperations)


def _sent(messages: list[Message]) -> set[tuple[str, bytes | None, bytes | None]]:
    return {(m.topic, m.key, m.value) for m in messages}


async def _held(pool: asyncpg.Pool, order_id: str) -> int:
    return int(
        await pool.fetchval("SELECT count(*) FROM stock_holds WHERE order_id = $1", order_id)
    )


async def test_a_redelivered_batch_is_answered_from_the_outbox(pool: asyncpg.Pool) -> None:
    await seed_catalogue(pool)
    run = uuid.uuid4().hex[:8]
    events = [order_submitted(f"ibx-{run}-{i}", f"ibx-{run}", {"sku-mug": 1}) for i in range(3)]
    records = [consumed(e, i) for i, e in enumerate(events)]

    first = await run_batch(pool, OrderBuild(), records, 1)
    again = await run_batch(pool, OrderBuild(), records, 1)

    assert (first.processed, first.duplicates) == (3, 0)
    assert (again.processed, again.duplicates) == (0, 3)
    # The same stored messages, not new ones: nothing was built twice.
    assert _sent(again.messages) == _sent(first.messages)
    for e in events:
        assert await order_state(pool, e.payload.order_id) == "built"
        assert await _held(pool, e.payload.order_id) == 1


async def test_a_batch_with_one_event_seen_before_applies_the_others_once(
    pool: asyncpg.Pool,
) -> None:
    """The usual inbox insert is a plain one: the event seen before aborts that attempt (its
    first statement), and the batch runs again asking with ON CONFLICT."""
    await seed_catalogue(pool)
    run = uuid.uuid4().hex[:8]
    events = [order_submitted(f"ibm-{run}-{i}", f"ibm-{run}", {"sku-mug": 1}) for i in range(3)]
    records = [consumed(e, i) for i, e in enumerate(events)]

    first = await run_batch(pool, OrderBuild(), records[:1], 1)
    mixed = await run_batch(pool, OrderBuild(), records, 1)

    assert (first.processed, first.duplicates) == (1, 0)
    assert (mixed.processed, mixed.duplicates) == (2, 1)
    # The first event's stored answer again, and one new answer for each of the others.
    assert _sent(first.messages) <= _sent(mixed.messages)
    assert len(mixed.messages) == 3
    for e in events:
        assert await order_state(pool, e.payload.order_id) == "built"
        assert await _held(pool, e.payload.order_id) == 1
    recorded = await pool.fetchval(
        "SELECT count(*) FROM inbox WHERE consumer = 'order_build' AND event_id = ANY($1)",
        [e.event_id for e in events],
    )
    assert recorded == 3


async def test_two_consumers_delivering_one_batch_at_once_apply_it_once(
    pool: asyncpg.Pool,
) -> None:
    """A rebalance can hand a batch to a second consumer while the first still runs it:
    the second's inbox insert waits for the first's commit, then finds every event done."""
    await seed_catalogue(pool)
    run = uuid.uuid4().hex[:8]
    events = [order_submitted(f"ibc-{run}-{i}", f"ibc-{run}", {"sku-mug": 1}) for i in range(4)]
    records = [consumed(e, i) for i, e in enumerate(events)]

    a, b = await asyncio.gather(
        run_batch(pool, OrderBuild(), records, 1), run_batch(pool, OrderBuild(), records, 1)
    )

    assert sorted((a.processed, b.processed)) == [0, 4]
    assert a.duplicates + b.duplicates == 4
    # Both publish the same four answers: the loser's are the winner's, read back.
    assert _sent(a.messages) == _sent(b.messages)
    assert len(a.messages) == 4
    for e in events:
        assert await order_state(pool, e.payload.order_id) == "built"
        assert await _held(pool, e.payload.order_id) == 1
