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
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

from redis.asyncio import Redis

from workers.runtime.errors import TransientError
from workers.runtime.stage import current_batch

# Compare-and-delete for any number of locks in one round trip: KEYS[i] is deleted only if
# it still holds ARGV[i] (its owner). Returns how many were deleted.
_RELEASE = """
local deleted = 0
for i, key in ipairs(KEYS) do
  if redis.call('get', key) == ARGV[i] then deleted = deleted + redis.call('del', key) end
end
return deleted
"""
_BATCH_LOCKS = "locks"  # the batch scope's resource: name -> Lock held until the batch ends


class LockNotAcquired(TransientError):
    """Someone else is working on it: retry later."""


@dataclass(frozen=True)
class Lock:
    key: str
    owner: str


async def acquire(redis: Redis, name: str, ttl_ms: int) -> Lock | None:
    key, owner = _key(name), secrets.token_hex(8)
    if not await redis.set(key, owner, nx=True, px=ttl_ms):
        return None
    return Lock(key, owner)


async def release(redis: Redis, lock: Lock) -> bool:
    """Delete only if still ours: an expired lock re-taken by another holder is left alone."""
    return await release_all(redis, [lock]) == 1


async def release_all(redis: Redis, held: Sequence[Lock]) -> int:
    """`release` for many locks in one round trip; returns how many were still ours."""
    if not held:
        return 0
    keys, owners = [lock.key for lock in held], [lock.owner for lock in held]
    return int(await redis.eval(_RELEASE, len(keys), *keys, *owners))


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
    return (await held_for_batch_all(redis, [name], ttl_ms))[0]


async def held_for_batch_all(
    redis: Redis, names: Sequence[str], ttl_ms: int = 30_000
) -> list[Lock]:
    """`held_for_batch` for many names in one round trip (a pipeline of set-if-absent), and
    all of a batch's locks released in one at its end. If any name is held by someone else,
    the ones taken stay with the batch (released at its end, as it is retried) and
    LockNotAcquired names the first that was not."""
    scope = current_batch()
    held: dict[str, Lock] | None = scope.resources.get(_BATCH_LOCKS)
    if held is None:
        held = scope.resources[_BATCH_LOCKS] = {}
        taken_by_batch = held  # the cleanup must not read scope.resources: it is cleared
        scope.on_end(lambda: release_all(redis, list(taken_by_batch.values())))
    wanted = [n for n in dict.fromkeys(names) if n not in held]
    if wanted:
        owner = secrets.token_hex(8)
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for name in wanted:
                    pipe.set(_key(name), owner, nx=True, px=ttl_ms)
                got = await pipe.execute()
        except Exception:
            # Some may be set before the failure: give back what is ours, or they would
            # turn the batch's own retry away until they expire.
            with suppress(Exception):
                await release_all(redis, [Lock(_key(n), owner) for n in wanted])
            raise
        for name, ok in zip(wanted, got, strict=True):
            if ok:
                held[name] = Lock(_key(name), owner)
        missing = [name for name, ok in zip(wanted, got, strict=True) if not ok]
        if missing:
            raise LockNotAcquired(missing[0])
    return [held[n] for n in names]


def _key(name: str) -> str:
    return f"payflow:lock:{name}"
