"""`Stage.prepare` for a batch's new events: their I/O outside the transaction, at once."""

import asyncio
import uuid
from typing import Any

from contracts.envelope import Envelope
from workers.runtime.errors import is_transient
from workers.runtime.stage import Stage

PREPARE_CONCURRENCY = 32


def prepares(kind: type[Stage]) -> bool:
    """Whether a stage does I/O before its transaction (overrides `prepare` or
    `before_prepare`); most stages do not, and skip that step altogether."""
    return kind.prepare is not Stage.prepare or kind.before_prepare is not Stage.before_prepare


async def prepare_all(stage: Stage, events: list[Envelope]) -> dict[uuid.UUID, Any]:
    """Run `prepare` outside the transaction; a permanent failure is kept per event."""
    if events:
        await stage.before_prepare(events)
    limit = asyncio.Semaphore(PREPARE_CONCURRENCY)

    async def one(ev: Envelope) -> Any:
        async with limit:
            try:
                return await stage.prepare(ev)
            except Exception as exc:
                if is_transient(exc):
                    raise
                return exc

    results = await asyncio.gather(*(one(e) for e in events))
    return {e.event_id: r for e, r in zip(events, results, strict=True)}
