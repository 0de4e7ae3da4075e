"""One batch of messages: decode, skip what was seen, apply the rest in one transaction.

Each event runs in its own savepoint inside the batch transaction, so one poisoned event
is dead-lettered without undoing the others, while a transient error (connection lost)
undoes the whole batch for a retry. One commit per batch is what keeps fsyncs low.
`Stage.before_commit` runs last in the same transaction, for work a stage coalesces across
the batch (e.g. settlement's merchant and fee credits): it commits with the events or not
at all. Whatever the events keep until the transaction ends (a Redis lock held from the
decision until the commit) is released by the batch scope right after the commit or rollback.
"""

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog
from aiokafka.structs import ConsumerRecord

from contracts.codec import ContractError, decode
from contracts.envelope import Envelope
from workers.runtime import dead_letters, inbox, outbox
from workers.runtime.dead_letters import DeadLetter
from workers.runtime.errors import is_transient
from workers.runtime.outbox import Message
from workers.runtime.park import from_record
from workers.runtime.stage import Stage, batch_scope

log = structlog.get_logger()
PREPARE_CONCURRENCY = 32


@dataclass
class BatchResult:
    messages: list[Message] = field(default_factory=list)  # outputs and dead letters
    processed: int = 0
    duplicates: int = 0
    dead: list[DeadLetter] = field(default_factory=list)


async def _prepare_all(stage: Stage, events: list[Envelope]) -> dict[uuid.UUID, Any]:
    """Run `prepare` outside the transaction; a permanent failure is kept per event."""
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


async def run_batch(
    pool: asyncpg.Pool, stage: Stage, records: list[ConsumerRecord[Any, Any]], attempt: int
) -> BatchResult:
    result = BatchResult()
    decoded: list[tuple[ConsumerRecord[Any, Any], Envelope | ContractError]] = []
    for rec in records:
        try:
            decoded.append((rec, decode(rec.topic, rec.value)))
        except ContractError as exc:
            decoded.append((rec, exc))
    events = [e for _, e in decoded if isinstance(e, Envelope)]

    already = await inbox.seen(pool, stage.name, (e.event_id for e in events))
    # No connection is held while `prepare` talks to the outside world (gateway calls).
    prepared = await _prepare_all(stage, [e for e in events if e.event_id not in already])
    async with batch_scope(), pool.acquire() as conn:
        async with conn.transaction():
            handled: set[uuid.UUID] = set()
            for rec, ev in decoded:
                if isinstance(ev, ContractError):
                    result.dead.append(from_record(stage.name, rec, ev, attempt))
                    continue
                if ev.event_id in already or ev.event_id in handled:
                    result.duplicates += 1
                    continue
                bound = structlog.contextvars.bound_contextvars(
                    event_id=str(ev.event_id), order_id=ev.correlation_id, stage=stage.name
                )
                with bound:
                    outputs = await _apply_one(
                        conn, stage, rec, ev, prepared.get(ev.event_id), attempt, result
                    )
                if outputs is not None:
                    handled.add(ev.event_id)
                    result.messages.extend(outputs)
                    result.processed += 1
            for dl in result.dead:
                await dead_letters.store(conn, dl)
            # Seen before: publish their stored outputs again, in case we died last time
            # between the commit and the publish.
            dup_ids = [e.event_id for e in events if e.event_id in already]
            if dup_ids:
                result.messages.extend(await outbox.stored_for(conn, stage.name, dup_ids))
            await stage.before_commit(conn)
    result.messages.extend(dl.message() for dl in result.dead)
    return result


async def _apply_one(
    conn: asyncpg.Connection,
    stage: Stage,
    rec: ConsumerRecord[Any, Any],
    ev: Envelope,
    prepared: Any,
    attempt: int,
    result: BatchResult,
) -> list[Message] | None:
    try:
        if isinstance(prepared, Exception):
            raise prepared
        async with conn.transaction():  # savepoint: a poisoned event undoes only itself
            if not await inbox.record(
                conn, stage.name, ev.event_id, rec.topic, rec.partition, rec.offset
            ):
                result.duplicates += 1
                return []
            outputs = await stage.handle(ev, conn, prepared)
            # Per event only at DEBUG: the stage, event id and order id are bound above.
            log.debug(
                "event_handled", event_type=ev.event_type, outputs=[o.event_type for o in outputs]
            )
            return await outbox.store(conn, stage.name, ev.event_id, outputs)
    except Exception as exc:
        if is_transient(exc):
            raise
        result.dead.append(from_record(stage.name, rec, exc, attempt, ev))
        return None
