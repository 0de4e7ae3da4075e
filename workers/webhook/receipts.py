"""Accepted callbacks written in groups: one transaction, one receipt statement and one wait
for the broker for all the callbacks that came in while the previous group was being written.

A group commit, as databases do for their log: under load a callback waits at most for the
group before its own, and the webhook pays one commit and one broker round trip per group
instead of per callback; alone, a callback is written at once, as before. Each callback is
still answered only after its receipt is committed and its event acknowledged by the broker
(acks=all); if either fails the whole group is rolled back and every callback in it is
answered 503, so the gateway retries each and nothing is half kept.
"""

import asyncio
import uuid
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer

from contracts.topics import GATEWAY_CALLBACKS
from workers.runtime.outbox import Message
from workers.runtime.produce import deliver_all
from workers.webhook import store
from workers.webhook.store import Receipt

# More would make the first callback of a busy group wait for a long statement.
MAX_GROUP = 500


@dataclass(frozen=True)
class Recorded:
    """The event id the callback is on the topic as; `again` when an earlier copy put it there."""

    event_id: uuid.UUID
    again: bool


class Replayed(Exception):
    """The callback id was accepted before with another body."""


class ReceiptWriter:
    def __init__(
        self, pool: asyncpg.Pool, producer: AIOKafkaProducer, publish_timeout_s: float
    ) -> None:
        self.pool, self.producer, self.publish_timeout_s = pool, producer, publish_timeout_s
        self._waiting: list[tuple[Receipt, asyncio.Future[Recorded]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, receipt: Receipt) -> Recorded:
        """Raises Replayed, or what Postgres or Kafka raised for the group."""
        answer: asyncio.Future[Recorded] = asyncio.get_running_loop().create_future()
        self._waiting.append((receipt, answer))
        if self._writer is None or self._writer.done():
            # Its own task: a caller that goes away does not cancel the others' group.
            self._writer = asyncio.create_task(self._write_groups())
        return await answer  # cancelled by a caller that goes away: the group goes on

    async def idle(self) -> None:
        """Returns once every group taken so far is written (at shutdown)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer])

    async def _write_groups(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
            try:
                outcomes = await self._write([r for r, _ in group])
            except Exception as exc:  # every callback of the group hears of it: 503
                for _, answer in group:
                    if not answer.done():
                        answer.set_exception(exc)
                continue
            for (_, answer), outcome in zip(group, outcomes, strict=True):
                if answer.done():
                    continue
                if isinstance(outcome, Replayed):
                    answer.set_exception(outcome)
                else:
                    answer.set_result(outcome)

    async def _write(self, receipts: list[Receipt]) -> list[Recorded | Replayed]:
        # The first copy of a callback id in the group is the one inserted; the others are
        # looked up after it, as copies arriving later would be. Inserted in key order, so
        # two webhooks writing the same ids wait for each other instead of deadlocking.
        firsts: dict[tuple[str, str], Receipt] = {}
        for r in receipts:
            firsts.setdefault((r.provider, r.callback_id), r)
        ordered = [firsts[k] for k in sorted(firsts)]
        async with self.pool.acquire() as conn, conn.transaction():
            fresh = await store.insert_receipts(conn, ordered)
            outcomes: list[Recorded | Replayed] = []
            for r in receipts:
                if r.event_id in fresh:
                    outcomes.append(Recorded(r.event_id, again=False))
                    continue
                first = await store.accepted_before(conn, r.provider, r.callback_id, r.body_digest)
                outcomes.append(Replayed() if first is None else Recorded(first, again=True))
            published = [r for r in receipts if r.event_id in fresh]
            # Acknowledged before the commit: a receipt never stands for an event not on the topic.
            await asyncio.wait_for(self._publish(published), self.publish_timeout_s)
        return outcomes

    async def _publish(self, receipts: list[Receipt]) -> None:
        topic = GATEWAY_CALLBACKS.name
        await deliver_all(
            self.producer, [Message(topic, r.payment_id.encode(), r.event) for r in receipts]
        )
