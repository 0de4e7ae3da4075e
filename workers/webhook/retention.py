"""Pruning the webhook's tables: receipts and refused callbacks older than
PAYFLOW_WEBHOOK_RETENTION_DAYS, in small batches while the webhook serves.

A receipt is what refuses a replayed callback id. It is pruned only once its signed timestamp
is older than the retention, which settings require to cover the timestamp tolerance, so a
replay of a pruned callback is refused as stale instead. (The callback stage's own replay
check reads gateway_callbacks, which this does not touch.)
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import structlog

from infra.settings import Settings
from workers.webhook import store

log = structlog.get_logger()
# Rows age by days: looking every ten minutes keeps each pass small.
PRUNE_EVERY_S = 600.0


@dataclass(frozen=True)
class Pruned:
    receipts: int
    rejections: int


async def prune(pool: asyncpg.Pool, retention_days: int, now: float) -> Pruned:
    """Everything past the retention at `now` (Unix seconds), batch by batch."""
    cutoff = now - retention_days * 86_400
    receipts = await _drain(lambda: store.prune_receipts(pool, int(cutoff)))
    rejections = await _drain(
        lambda: store.prune_rejections(pool, datetime.fromtimestamp(cutoff, UTC))
    )
    return Pruned(receipts, rejections)


async def _drain(batch: Callable[[], Awaitable[int]]) -> int:
    total = 0
    while (n := await batch()) > 0:
        total += n
        await asyncio.sleep(0)  # let callbacks in between batches
        if n < store.PRUNE_BATCH:
            break
    return total


async def prune_forever(
    pool: asyncpg.Pool,
    settings: Settings,
    clock: Callable[[], float] = time.time,
    every_s: float = PRUNE_EVERY_S,
) -> None:
    """Prune at once, then every `every_s`, until cancelled (a batch cut short rolls back). A
    failed pass (Postgres away) is logged and tried again next time: the webhook keeps serving."""
    while True:
        try:
            pruned = await prune(pool, settings.webhook_retention_days, clock())
        except Exception as exc:
            log.error("webhook_prune_failed", error_class=type(exc).__name__, error=str(exc)[:300])
        else:
            if pruned.receipts or pruned.rejections:
                log.info("webhook_pruned", receipts=pruned.receipts, rejections=pruned.rejections)
        await asyncio.sleep(every_s)
