"""The Redis lock helper against a real Redis, and a lock held until the batch commits."""

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

import asyncpg
import pytest
from redis.asyncio import Redis

from contracts.envelope import Envelope
from contracts.topics import ORDERS_SUBMITTED, Topic
from tests.support.pipeline import consumed, order_submitted
from workers.runtime import locks
from workers.runtime.batch import run_batch
from workers.runtime.errors import is_transient
from workers.runtime.stage import Stage, batch_scope

pytestmark = pytest.mark.integration


async def test_only_one_holder_at_a_time(redis: Redis) -> None:
    name = f"test-{uuid.uuid4().hex}"
    first = await locks.acquire(redis, name, ttl_ms=5_000)
    assert first is not None
    assert await locks.acquire(redis, name, ttl_ms=5_000) is None
    assert await locks.release(redis, first)
    assert await locks.acquire(redis, name, ttl_ms=5_000) is not None


async def test_an_expired_holder_cannot_release_the_next_holders_lock(redis: Redis) -> None:
    name = f"test-{uuid.uuid4().hex}"
    stale = await locks.acquire(redis, name, ttl_ms=50)
    assert stale is not None
    await asyncio.sleep(0.1)  # the lock expires under its holder
    current = await locks.acquire(redis, name, ttl_ms=5_000)
    assert current is not None
    assert not await locks.release(redis, stale)  # compare-and-delete: not ours any more
    assert await redis.get(current.key) == current.owner.encode()


async def test_held_raises_a_retryable_error_when_taken(redis: Redis) -> None:
    name = f"test-{uuid.uuid4().hex}"
    async with locks.held(redis, name):
        with pytest.raises(locks.LockNotAcquired):
            async with locks.held(redis, name):
                pass


async def test_a_batch_lock_is_shared_within_the_batch_and_released_at_its_end(
    redis: Redis,
) -> None:
    name = f"test-{uuid.uuid4().hex}"
    async with batch_scope():
        first = await locks.held_for_batch(redis, name)
        assert await locks.held_for_batch(redis, name) == first  # a second event, same batch
        assert await locks.acquire(redis, name, ttl_ms=5_000) is None  # anyone else waits
    assert await redis.get(first.key) is None


async def test_a_batch_lock_held_elsewhere_is_a_retryable_error(redis: Redis) -> None:
    name = f"test-{uuid.uuid4().hex}"
    other = await locks.acquire(redis, name, ttl_ms=5_000)
    assert other is not None
    async with batch_scope():
        with pytest.raises(locks.LockNotAcquired) as info:
            await locks.held_for_batch(redis, name)
    assert is_transient(info.value)
    assert await redis.get(other.key) == other.owner.encode()  # not ours: left alone


async def test_a_batch_takes_many_locks_at_once_and_releases_only_its_own(redis: Redis) -> None:
    """One round trip for a batch's locks: names already held by the batch are shared, one
    held elsewhere makes the batch retry, and at the batch's end every lock it took is
    released in one go, while the other holder's lock (and one that expired under the batch
    and was re-taken) is left alone."""
    uid = uuid.uuid4().hex
    names = [f"test-{uid}-{i}" for i in range(5)]
    other = await locks.acquire(redis, names[4], ttl_ms=5_000)
    assert other is not None
    async with batch_scope():
        single = await locks.held_for_batch(redis, names[0])
        many = await locks.held_for_batch_all(redis, [*names[:4], names[1]])
        assert many[0] == single and many[4] == many[1]  # shared within the batch
        assert [await locks.acquire(redis, n, ttl_ms=5_000) for n in names[:4]] == [None] * 4
        with pytest.raises(locks.LockNotAcquired) as info:
            await locks.held_for_batch_all(redis, names)
        assert is_transient(info.value) and names[4] in str(info.value)
        await redis.delete(many[3].key)  # expired under the batch, then taken by another
        retaken = await locks.acquire(redis, names[3], ttl_ms=5_000)
        assert retaken is not None
    assert [await redis.get(lock.key) for lock in many[:3]] == [None, None, None]
    assert await redis.get(retaken.key) == retaken.owner.encode()
    assert await redis.get(other.key) == other.owner.encode()


async def test_the_lock_is_held_until_the_batch_commits(pool: asyncpg.Pool, redis: Redis) -> None:
    """Taken in `handle`, still held after the last event and the coalesced writes (the
    commit has not happened yet), released once the transaction has committed, or rolled
    back."""
    uid = uuid.uuid4().hex[:8]
    name = f"test-order-{uid}"
    seen: list[str] = []

    class Locking(Stage):
        name: ClassVar[str] = f"test-locking-{uid}"
        consumes: ClassVar[Topic] = ORDERS_SUBMITTED
        fail_commit = False

        async def handle(
            self, event: Envelope, tx: asyncpg.Connection, prepared: Any
        ) -> Sequence[Envelope]:
            await locks.held_for_batch(redis, name)
            return []

        async def before_commit(self, tx: asyncpg.Connection) -> None:
            others_can_take = await locks.acquire(redis, name, ttl_ms=5_000) is not None
            seen.append("free" if others_can_take else "held")
            if self.fail_commit:
                raise ConnectionResetError("lost the database before the commit")

    stage = Locking()
    events = [order_submitted(f"lock-{uid}-{i}", "b", {"sku-mug": 1}) for i in range(3)]
    result = await run_batch(pool, stage, [consumed(e, i) for i, e in enumerate(events)], 1)
    assert result.processed == 3
    assert seen == ["held"]
    assert await redis.get(f"payflow:lock:{name}") is None  # released after the commit
    assert (
        await pool.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1", Locking.name) == 3
    )  # and the commit did happen

    stage.fail_commit = True
    more = [order_submitted(f"lock-{uid}-x{i}", "b", {"sku-mug": 1}) for i in range(2)]
    with pytest.raises(ConnectionResetError):
        await run_batch(pool, stage, [consumed(e, 10 + i) for i, e in enumerate(more)], 1)
    assert seen == ["held", "held"]
    assert await redis.get(f"payflow:lock:{name}") is None  # released after the rollback
