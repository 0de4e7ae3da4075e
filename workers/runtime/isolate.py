"""Finding the message that makes a whole batch fail (bisection).

Each event already runs in its own savepoint, so a bad event normally costs only itself.
What escapes that is batch-wide: a coalesced write in `before_commit`, storing a dead
letter, publishing an output the broker refuses. Rather than retry such a batch forever,
it is split in halves, each half
tried on its own, recursing into the half that fails, until the one message that causes it
is alone: that one is dead-lettered, the rest commit. Halves run in order, so a partition's
events keep their order.

An outage is not a poison message: a transient error (a dependency down or busy: Postgres,
Kafka, the payment gateway) that outlived the retry budget, whole batch or half, raises
`Outage`, and the caller keeps the batch for later and reports itself failing instead of
dead-lettering good messages.
"""

from collections.abc import Awaitable, Callable

from workers.runtime.errors import is_transient
from workers.runtime.kafka import Record

Attempt = Callable[[list[Record]], Awaitable[object]]
DeadLetterOne = Callable[[Record, BaseException], Awaitable[None]]


class Outage(Exception):
    """The batch failed because a dependency is down, not because of its messages."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause


async def isolate(
    records: list[Record],
    error: BaseException,
    attempt: Attempt,
    dead_letter_one: DeadLetterOne,
) -> int:
    """Process `records`, which failed as a whole with `error`, dead-lettering only the
    messages that fail alone. Returns how many were dead-lettered; raises Outage."""
    dead = 0

    async def condemn(record: Record, exc: BaseException) -> None:
        # Parking needs Postgres and Kafka too: if they went away, keep the batch for later.
        try:
            await dead_letter_one(record, exc)
        except Exception as park_error:
            if is_transient(park_error):
                raise Outage(park_error) from park_error
            raise

    async def run(part: list[Record], exc: BaseException) -> None:
        nonlocal dead
        if is_transient(exc):
            raise Outage(exc)
        if len(part) == 1:
            await condemn(part[0], exc)
            dead += 1
            return
        middle = len(part) // 2
        for half in (part[:middle], part[middle:]):
            try:
                await attempt(half)
            except Exception as half_error:
                await run(half, half_error)

    await run(records, error)
    return dead
