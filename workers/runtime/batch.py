"""One batch of messages: decode, skip what was seen, apply the rest in one transaction.

The normal path is set-based: one statement marks every new event in the inbox (a plain
insert; a redelivered event aborts that attempt and the batch asks again with ON CONFLICT,
`inbox.SeenBefore`), the events run one after another with no savepoint (after
`Stage.before_batch`, reads made for the whole batch; a `batched` stage takes them all in
one `handle_batch`, a few statements per table for the whole batch), one statement stores
every output in the outbox, and `Stage.before_commit` runs last (work a stage coalesces
across the batch, such as settlement's merchant and fee credits). One commit per batch
keeps fsyncs low.

An event that fails for good (a poisoned payload, a broken rule) aborts that attempt: the
transaction is rolled back, the event is set aside as a dead letter and the batch runs
again without it. After `FAST_FAILURES` such events the batch falls back to a savepoint per
event, so a batch full of poison costs one extra attempt, not one per event. A stage's
all-or-nothing part (`undoable`) that fails runs again in a savepoint of its own, in one
more attempt of the batch (workers/runtime/undoable.py). A transient error (connection
lost, deadlock) undoes the whole batch for a retry by the caller.
Whatever the events keep until the transaction ends (a Redis lock held from the decision
until the commit) is released by the batch scope right after each commit or rollback.
"""

import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog

from contracts.codec import ContractError, decode
from contracts.envelope import Envelope
from workers.runtime import dead_letters, inbox, outbox
from workers.runtime.dead_letters import DeadLetter
from workers.runtime.errors import is_transient
from workers.runtime.kafka import Record
from workers.runtime.logs import debug_enabled
from workers.runtime.outbox import Message
from workers.runtime.park import from_record
from workers.runtime.prepare import prepare_all, prepares
from workers.runtime.stage import EventFailed, Stage, batch_scope
from workers.runtime.undoable import CAREFUL, RunCarefully

log = structlog.get_logger()
# Poisoned events tolerated on the fast path before a batch takes a savepoint per event.
FAST_FAILURES = 2


@dataclass
class BatchResult:
    messages: list[Message] = field(default_factory=list)  # outputs and dead letters
    processed: int = 0
    duplicates: int = 0
    dead: list[DeadLetter] = field(default_factory=list)


class _Careful(Exception):
    """An event's undoable part failed on the fast path: the attempt is undone and the
    batch runs again with a savepoint around that part (workers/runtime/undoable.py)."""

    def __init__(self, event_id: uuid.UUID) -> None:
        super().__init__(str(event_id))
        self.event_id = event_id


@dataclass
class _Batch:
    """What every attempt of one batch shares: decoded records, seen ids, prepared results,
    and the events condemned so far (id -> error)."""

    stage: Stage
    attempt: int
    decoded: list[tuple[Record, Envelope | ContractError]]
    already: set[uuid.UUID]
    prepared: dict[uuid.UUID, Any]
    condemned: dict[uuid.UUID, Exception] = field(default_factory=dict)
    # Events whose undoable part failed once: from now on it runs in a savepoint.
    careful: set[uuid.UUID] = field(default_factory=set)
    seen_before: bool = False  # an attempt met an event recorded before (a redelivery)


async def run_batch(
    pool: asyncpg.Pool, stage: Stage, records: list[Record], attempt: int
) -> BatchResult:
    decoded: list[tuple[Record, Envelope | ContractError]] = []
    for rec in records:
        try:
            decoded.append((rec, decode(rec.topic, rec.value)))
        except ContractError as exc:
            decoded.append((rec, exc))
    events = [e for _, e in decoded if isinstance(e, Envelope)]
    already: set[uuid.UUID] = set()
    prepared: dict[uuid.UUID, Any] = {}
    if prepares(type(stage)):
        # Asked before the transaction so that no gateway is called for an event done
        # before; a stage without `prepare` learns it from the inbox insert alone.
        already = await inbox.seen(pool, stage.name, (e.event_id for e in events))
        # No connection is held while `prepare` talks to the outside world (gateway calls).
        prepared = await prepare_all(stage, [e for e in events if e.event_id not in already])
    batch = _Batch(stage, attempt, decoded, already, prepared)
    for ev_id, result in prepared.items():
        if isinstance(result, Exception):
            batch.condemned[ev_id] = result
    while True:
        savepoints = len(batch.condemned) >= FAST_FAILURES
        try:
            return await _attempt(pool, batch, savepoints=savepoints)
        except EventFailed as failed:
            batch.condemned[failed.event_id] = failed.error
        except _Careful as careful:
            batch.careful.add(careful.event_id)
        except inbox.SeenBefore:
            batch.seen_before = True


async def _attempt(pool: asyncpg.Pool, batch: _Batch, *, savepoints: bool) -> BatchResult:
    stage, result = batch.stage, BatchResult()
    todo: list[tuple[Record, Envelope]] = []
    seen_here: set[uuid.UUID] = set()
    for rec, ev in batch.decoded:
        if isinstance(ev, ContractError):
            result.dead.append(from_record(stage.name, rec, ev, batch.attempt))
        elif ev.event_id in batch.already or ev.event_id in seen_here:
            result.duplicates += 1
        elif ev.event_id in batch.condemned:
            seen_here.add(ev.event_id)
            error = batch.condemned[ev.event_id]
            result.dead.append(from_record(stage.name, rec, error, batch.attempt, ev))
        else:
            seen_here.add(ev.event_id)
            todo.append((rec, ev))
    # Every stage touches an order's rows in order-id order, so two batches never lock the
    # same rows in opposite orders (no deadlocks between stages). The sort is stable: an
    # order's own events (one key, one partition) keep their order.
    todo.sort(key=lambda pair: pair[1].correlation_id)
    # Processed before (by an earlier delivery, or by another consumer during a rebalance):
    # their stored outputs are published again, in case that delivery died between its
    # commit and its publish.
    repeated = [
        e.event_id
        for _, e in batch.decoded
        if isinstance(e, Envelope) and e.event_id in batch.already
    ]
    async with batch_scope(), pool.acquire() as conn:
        async with conn.transaction():
            if savepoints:
                outputs = await _each_in_savepoint(conn, batch, todo, result, repeated)
            else:
                outputs = await _all_at_once(conn, batch, todo, result, repeated)
            # Owed until the causes' offsets are committed: a redelivery republishes them.
            stored = await outbox.store_many(conn, stage.name, outputs, tracked=False)
            result.messages.extend(stored)
            for dl in result.dead:
                await dead_letters.store(conn, dl)
            if repeated:
                result.messages.extend(await outbox.stored_for(conn, stage.name, repeated))
            await stage.before_commit(conn)
    result.messages.extend(dl.message() for dl in result.dead)
    return result


Outputs = list[tuple[uuid.UUID, list[Envelope]]]


async def _all_at_once(
    conn: asyncpg.Connection,
    batch: _Batch,
    todo: list[tuple[Record, Envelope]],
    result: BatchResult,
    repeated: list[uuid.UUID],
) -> Outputs:
    """The normal path: the inbox in one statement, the events without savepoints."""
    stage = batch.stage
    mine = await inbox.record_many(conn, stage.name, todo, new=not batch.seen_before)
    fresh = [ev for _, ev in todo if ev.event_id in mine]
    repeated.extend(ev.event_id for _, ev in todo if ev.event_id not in mine)
    result.duplicates += len(todo) - len(fresh)
    outputs: Outputs = []
    if stage.batched:
        outputs = await _whole_batch(conn, batch, fresh)
        result.processed += len(outputs)
        return outputs
    await stage.before_batch(fresh, conn)
    for ev in fresh:
        token = CAREFUL.set(ev.event_id in batch.careful)
        with _bound(stage, ev):
            try:
                produced = list(await stage.handle(ev, conn, batch.prepared.get(ev.event_id)))
            except RunCarefully as again:
                raise _Careful(ev.event_id) from again
            except Exception as exc:
                if is_transient(exc):
                    raise
                raise EventFailed(ev.event_id, exc) from exc
            finally:
                CAREFUL.reset(token)
            _debug(ev, produced)
        outputs.append((ev.event_id, produced))
        result.processed += 1
    return outputs


async def _whole_batch(conn: asyncpg.Connection, batch: _Batch, events: list[Envelope]) -> Outputs:
    """A set-based stage's events in one call. A failure it does not pin on an event fails
    the batch, and the consumer bisects it down to the event that causes it."""
    try:
        produced = await batch.stage.handle_batch(events, conn, batch.prepared)
    except (EventFailed, RunCarefully):
        raise
    except Exception as exc:
        if len(events) == 1 and not is_transient(exc):
            raise EventFailed(events[0].event_id, exc) from exc
        raise
    outputs: Outputs = [(ev.event_id, list(out)) for ev, out in zip(events, produced, strict=True)]
    if debug_enabled():
        for ev, (_, out) in zip(events, outputs, strict=True):
            with _bound(batch.stage, ev):
                _debug(ev, out)
    return outputs


async def _each_in_savepoint(
    conn: asyncpg.Connection,
    batch: _Batch,
    todo: list[tuple[Record, Envelope]],
    result: BatchResult,
    repeated: list[uuid.UUID],
) -> Outputs:
    """The fallback for a batch with several bad events: each event in its own savepoint
    (its inbox row too, so a dead-lettered event is not marked seen and can be replayed)."""
    stage = batch.stage
    outputs: Outputs = []
    for rec, ev in todo:
        token = CAREFUL.set(True)  # every undoable part in a savepoint of its own too
        with _bound(stage, ev):
            try:
                async with conn.transaction():
                    if not await inbox.record_many(conn, stage.name, [(rec, ev)]):
                        result.duplicates += 1
                        repeated.append(ev.event_id)
                        continue
                    produced = list(await stage.handle(ev, conn, batch.prepared.get(ev.event_id)))
                    _debug(ev, produced)
            except Exception as exc:
                if is_transient(exc):
                    raise
                error = exc.error if isinstance(exc, EventFailed) else exc
                result.dead.append(from_record(stage.name, rec, error, batch.attempt, ev))
                continue
            finally:
                CAREFUL.reset(token)
        outputs.append((ev.event_id, produced))
        result.processed += 1
    return outputs


def _bound(stage: Stage, ev: Envelope) -> Any:
    return structlog.contextvars.bound_contextvars(
        event_id=str(ev.event_id), order_id=ev.correlation_id, stage=stage.name
    )


def _debug(ev: Envelope, produced: list[Envelope]) -> None:
    # Per event only at DEBUG: the stage, event id and order id are bound by the caller.
    if debug_enabled():
        outputs = [o.event_type for o in produced]
        log.debug("event_handled", event_type=ev.event_type, outputs=outputs)
