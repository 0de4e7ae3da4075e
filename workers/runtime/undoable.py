"""A part of an event that must be all or nothing, without a savepoint on the normal path.

A stage wraps such a part (settlement's sale: confirm every hold, post the purchase) in
`undoable(tx)` and catches what it raises, as it would around a savepoint. A savepoint costs
two round trips per event, paid on every event to undo the rare one that fails; so the
normal path takes none. When the part fails, `RunCarefully` undoes the whole batch attempt
instead, and the runtime runs the batch again with a real savepoint for that event
(workers/runtime/batch.py): the stage then sees the failure exactly as it would have, with
nothing of the part left behind.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar

import asyncpg

from workers.runtime.errors import is_transient

# True while the runtime handles an event that failed inside `undoable` before.
CAREFUL: ContextVar[bool] = ContextVar("payflow_careful", default=False)


class RunCarefully(Exception):
    """An undoable part failed on the fast path: run this event's batch again with a
    savepoint around the part. Raised through the stage to the runtime."""


@asynccontextmanager
async def undoable(tx: asyncpg.Connection) -> AsyncIterator[None]:
    if CAREFUL.get():
        async with tx.transaction():
            yield
        return
    try:
        yield
    except Exception as exc:
        if is_transient(exc):
            raise
        raise RunCarefully(f"{type(exc).__name__}: {exc}") from exc
