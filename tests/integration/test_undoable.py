"""An event's all-or-nothing part (`undoable`) on a real Postgres: no savepoint on the
normal path; a part that fails leaves nothing behind and the stage goes on from its
failure as it would have after a savepoint, in one more attempt of the batch."""

import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

import asyncpg
import pytest

from contracts.envelope import Envelope
from contracts.topics import ORDERS_SUBMITTED, Topic
from tests.integration.test_deferred_credits import FUNDED, _setup, _total
from tests.support.pipeline import consumed, order_submitted
from workers.ledger import postings
from workers.runtime.batch import run_batch
from workers.runtime.stage import Stage
from workers.runtime.undoable import undoable

pytestmark = pytest.mark.integration


class _Broken(Exception):
    """What the stage expects its part may raise, and answers (here: a credit to `b`)."""


def _stage(wallet: str, a: str, b: str, broken: str, uncaught: str, handled: Counter[str]) -> Stage:
    class Seller(Stage):
        """Credits `a` 100 per event inside its undoable part; the `broken` order's part
        fails after crediting and is answered with a credit of 1 to `b`; the `uncaught`
        order's part fails with what the stage does not expect."""

        name: ClassVar[str] = f"test-undoable-{uuid.uuid4().hex[:8]}"
        consumes: ClassVar[Topic] = ORDERS_SUBMITTED

        async def _credit(self, tx: asyncpg.Connection, key: str, to: str, amount: int) -> None:
            await postings.post(
                tx,
                kind="correction",
                order_id=None,
                idempotency_key=f"{self.name}:{key}",
                currency="EUR",
                legs=[postings.Leg(wallet, to, amount, "test")],
                defer=True,
            )

        async def handle(
            self, event: Envelope, tx: asyncpg.Connection, prepared: Any
        ) -> Sequence[Envelope]:
            order = event.correlation_id
            handled[order] += 1
            try:
                async with undoable(tx):
                    await self._credit(tx, f"sale:{order}", a, 100)
                    if order == uncaught:
                        await tx.execute("SELECT 1/0")
                    if order == broken:
                        raise _Broken(order)
            except _Broken:
                await self._credit(tx, f"review:{order}", b, 1)
            return []

        async def before_commit(self, tx: asyncpg.Connection) -> None:
            await postings.flush_deferred(tx)

    return Seller()


async def test_a_failed_part_leaves_nothing_and_the_stage_answers_it(pool: asyncpg.Pool) -> None:
    wallet, a, b = await _setup(pool)
    uid = uuid.uuid4().hex[:8]
    orders = [f"undo-{uid}-{i}" for i in range(6)]
    broken, uncaught = orders[2], orders[4]
    handled: Counter[str] = Counter()
    stage = _stage(wallet, a, b, broken, uncaught, handled)
    records = [consumed(order_submitted(o, "b", {"sku-mug": 1}), i) for i, o in enumerate(orders)]

    result = await run_batch(pool, stage, records, 1)

    assert (result.processed, len(result.dead)) == (5, 1)
    assert result.dead[0].key == uncaught.encode()  # what the stage does not answer is parked
    assert await _total(pool, a) == 400  # four sales; the two failed parts left nothing
    assert await _total(pool, b) == 1  # the broken sale answered once
    assert await _total(pool, wallet) == FUNDED - 401
    # Fast path first; each failing part costs its event one more run, in a savepoint.
    assert handled[broken] >= 2 and handled[orders[0]] >= 2

    again = await run_batch(pool, stage, records, 1)  # redelivered: no second effect
    assert (again.processed, again.duplicates) == (0, 5)
    assert await _total(pool, a) == 400 and await _total(pool, b) == 1
