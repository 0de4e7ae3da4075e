"""The Redis lock helper against a real Redis."""

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from workers.runtime import locks

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
