"""What a stage is to the runtime: the topic it consumes and its business step."""

import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, ClassVar

import asyncpg
import structlog

from contracts.envelope import Envelope
from contracts.topics import Topic

log = structlog.get_logger()


class Stage(ABC):
    """A business step. `handle` runs inside the runtime's database transaction and returns
    the events that must be published; the runtime owns consuming, the inbox, the outbox,
    retries, dead letters and commits. What `handle` must keep until the batch's commit (or
    rollback), such as a lock, it registers with `current_batch().on_end(...)`."""

    name: ClassVar[str]
    consumes: ClassVar[Topic]
    # Further topics, e.g. a stage's own internal steps (kept apart from what upstream may publish).
    also_consumes: ClassVar[tuple[Topic, ...]] = ()

    async def prepare(self, event: Envelope) -> Any:
        """Idempotent I/O done outside the transaction (e.g. a gateway call keyed by an
        idempotency key). Its result is passed to `handle`. Default: nothing."""
        return None

    async def before_prepare(self, events: list[Envelope]) -> None:
        """Runs once per batch before `prepare` runs for each of its new events, outside any
        transaction: what the prepares need, read or recorded for the whole batch at once.
        Default: nothing."""
        return None

    # A set-based stage handles its batch's new events in one call (`handle_batch`): one
    # statement per table for the whole batch instead of several per event.
    batched: ClassVar[bool] = False

    @abstractmethod
    async def handle(
        self, event: Envelope, tx: asyncpg.Connection, prepared: Any
    ) -> Sequence[Envelope]:
        """Apply the event's effect using `tx` and return the events to publish."""

    async def handle_batch(
        self, events: list[Envelope], tx: asyncpg.Connection, prepared: Mapping[uuid.UUID, Any]
    ) -> list[Sequence[Envelope]]:
        """A `batched` stage's whole batch (new events only, in order): what each event
        publishes, in the order of `events`. An event that can never succeed is named by
        raising `EventFailed`; the runtime undoes the attempt and runs the batch again
        without it. Called with a single event when the runtime needs one savepoint each."""
        return [await self.handle(e, tx, prepared.get(e.event_id)) for e in events]

    async def before_batch(self, events: list[Envelope], tx: asyncpg.Connection) -> None:
        """Runs once per batch inside its transaction, before the events (new ones only, in
        order) are handled one by one: reads a stage makes for the whole batch at once, kept
        in `current_batch().resources`. Default: nothing."""
        return None

    async def before_commit(self, tx: asyncpg.Connection) -> None:
        """Runs once per batch inside the batch transaction, after every event (and the dead
        letters), just before the commit: work a stage batches up across its events, such as
        coalesced balance updates. Not in any event's savepoint, so an error here fails the
        whole batch (retried when transient). Default: nothing."""
        return None


class EventFailed(Exception):
    """One event of a batch failed for good (its `error` is what the dead letter says)."""

    def __init__(self, event_id: uuid.UUID, error: Exception) -> None:
        super().__init__(str(error))
        self.event_id, self.error = event_id, error


class BatchScope:
    """What a batch's events keep until its transaction has ended (committed or rolled back),
    such as a Redis lock that must outlive `handle` until the commit. `resources` lets a
    helper find what an earlier event of the same batch already holds."""

    def __init__(self) -> None:
        self.resources: dict[str, Any] = {}
        self._cleanups: list[Callable[[], Awaitable[Any]]] = []

    def on_end(self, cleanup: Callable[[], Awaitable[Any]]) -> None:
        self._cleanups.append(cleanup)

    async def end(self) -> None:
        """Every cleanup, latest first. A failing one is logged, never raised: the batch
        has already committed (or is failing for its own reason)."""
        while self._cleanups:
            cleanup = self._cleanups.pop()
            try:
                await cleanup()
            except Exception as exc:
                log.warning("batch_cleanup_failed", error_class=type(exc).__name__, error=str(exc))
        self.resources.clear()


_current: ContextVar[BatchScope | None] = ContextVar("payflow_batch_scope", default=None)


def current_batch() -> BatchScope:
    """The scope of the batch being handled; only the runtime (or a test) opens one."""
    scope = _current.get()
    if scope is None:
        raise RuntimeError("no batch in progress: open one with batch_scope()")
    return scope


@asynccontextmanager
async def batch_scope() -> AsyncIterator[BatchScope]:
    """Open around a batch's transaction; its cleanups run once the transaction is over."""
    scope = BatchScope()
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)
        await scope.end()
