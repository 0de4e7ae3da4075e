"""Redis locks: set-if-absent with expiry and atomic compare-and-delete release.

A lock only saves wasted work. It can expire mid-operation or vanish with a Redis restart,
so every write it guards is also a conditional update in Postgres carrying the fencing
token read from the row itself (`... WHERE fence = $read_fence`, setting `fence + 1`): a
stale holder's write then changes nothing. The token lives in Postgres, not Redis, because
a Redis counter restarts from zero when Redis does.

Why the fence check must stay inside the database write, even now that the lock is held
until the commit (`held_for_batch`): the lock's expiry can pass while a batch is slow (a
long retry, a GC pause, a stalled connection), and Redis can restart empty or fail over
without our key. Either way a second holder can decide the same payment while the first
is still in its transaction; only the row lock and the fence compared in the UPDATE
itself make the second decision a no-op. A check before the write (read fence, compare in
Python, then write) would leave exactly that gap open.
"""

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis

from workers.runtime.errors import TransientError
from workers.runtime.stage import current_batch

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class LockNotAcquired(TransientError):
    """Someone else is working on it: retry later."""


@dataclass(frozen=True)
class Lock:
    key: str
    owner: str


async def acquire(redis: Redis, name: str, ttl_ms: int) -> Lock | None:
    key, owner = f"payflow:lock:{name}", secrets.token_hex(8)
    if not await redis.set(key, owner, nx=True, px=ttl_ms):
        return None
    return Lock(key, owner)


async def release(redis: Redis, lock: Lock) -> bool:
    """Delete only if still ours: an expired lock re-taken by another holder is left alone."""
    return bool(await redis.eval(_RELEASE, 1, lock.key, lock.owner))


@asynccontextmanager
async def held(redis: Redis, name: str, ttl_ms: int = 10_000) -> AsyncIterator[Lock]:
    lock = await acquire(redis, name, ttl_ms)
    if lock is None:
        raise LockNotAcquired(name)
    try:
        yield lock
    finally:
        await release(redis, lock)


async def held_for_batch(redis: Redis, name: str, ttl_ms: int = 30_000) -> Lock:
    """Take the lock until the current batch's transaction has ended (commit or rollback),
    so no other worker acts on `name` between our decision and its commit. Taken once per
    batch: a second event of the same batch on the same name shares it. Raises
    LockNotAcquired (transient: the batch is retried) when another holder has it."""
    scope = current_batch()
    key = f"lock:{name}"
    lock: Lock | None = scope.resources.get(key)
    if lock is not None:
        return lock
    taken = await acquire(redis, name, ttl_ms)
    if taken is None:
        raise LockNotAcquired(name)
    scope.resources[key] = taken
    scope.on_end(lambda: release(redis, taken))
    return taken
