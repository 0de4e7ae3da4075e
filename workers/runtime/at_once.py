"""The usual events of a batch, handled together before the batch's events go one by one.

A stage finds in `before_batch` the events of the common case, whose rows no other event of
the batch touches, and does their work with one statement per table (`answer_at_once`).
Their answers wait in the batch scope; `handle` returns an event's answer (`answered`) and
does everything else one by one. The work runs in a savepoint: if any of it fails, all of
it is undone and every event goes one by one, where the failure is pinned on its event.
"""

from collections.abc import Awaitable, Callable
from uuid import UUID

import asyncpg
import structlog

from contracts.envelope import Envelope
from workers.runtime.errors import is_transient
from workers.runtime.stage import current_batch

log = structlog.get_logger()

Answers = dict[UUID, list[Envelope]]  # what each event handled at once publishes
# Below this many events the savepoint costs more round trips than going one by one.
MIN_EVENTS = 2


async def answer_at_once(
    tx: asyncpg.Connection, name: str, work: Callable[[], Awaitable[Answers]]
) -> None:
    try:
        async with tx.transaction():
            answers = await work()
    except Exception as exc:
        if is_transient(exc):
            raise
        log.info("at_once_undone", work=name, error=str(exc).splitlines()[0])
        return
    current_batch().resources[f"at_once:{name}"] = answers


def answered(name: str, event: Envelope) -> list[Envelope] | None:
    """What the event publishes if `answer_at_once` handled it; None: handle it."""
    try:
        found = current_batch().resources.get(f"at_once:{name}")
    except RuntimeError:  # no batch: called on its own (a test, a tool)
        return None
    return found.get(event.event_id) if isinstance(found, dict) else None
