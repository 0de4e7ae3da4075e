"""What a stage is to the runtime: the topic it consumes and its business step."""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import asyncpg

from contracts.envelope import Envelope
from contracts.topics import Topic


class Stage(ABC):
    """A business step. `handle` runs inside the runtime's database transaction and returns
    the events that must be published; the runtime owns consuming, the inbox, the outbox,
    retries, dead letters and commits."""

    name: ClassVar[str]
    consumes: ClassVar[Topic]
    # Further topics, e.g. a stage's own internal steps (kept apart from what upstream may publish).
    also_consumes: ClassVar[tuple[Topic, ...]] = ()

    async def prepare(self, event: Envelope) -> Any:
        """Idempotent I/O done outside the transaction (e.g. a gateway call keyed by an
        idempotency key). Its result is passed to `handle`. Default: nothing."""
        return None

    @abstractmethod
    async def handle(
        self, event: Envelope, tx: asyncpg.Connection, prepared: Any
    ) -> Sequence[Envelope]:
        """Apply the event's effect using `tx` and return the events to publish."""

    async def before_commit(self, tx: asyncpg.Connection) -> None:
        """Runs once per batch inside the batch transaction, after every event (and the dead
        letters), just before the commit: work a stage batches up across its events, such as
        coalesced balance updates. Not in any event's savepoint, so an error here fails the
        whole batch (retried when transient). Default: nothing."""
        return None
