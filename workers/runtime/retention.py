"""Pruning the delivery tables: inbox, outbox and dead letters past PAYFLOW_RETENTION_DAYS,
in short batches while the workers run (the sweeper every PAYFLOW_RETENTION_INTERVAL_S, or
`payflow prune`).

What goes, and why nothing owed or unfinished does:
- inbox rows processed before the cutoff. The retention is at least as long as our topics keep
  a message (settings refuse less), so no delivery can come for them any more.
- outbox rows published before the cutoff. An unpublished row of a producer without an
  input topic (it has a pending row) is never pruned: the sweeper still owes it. A stage's
  rows are not marked (outbox.store_many; only a redelivery's publish marks one): an
  unmarked one goes once created before the cutoff, as it is owed only until its cause's
  offset is committed, and a cause that old can no longer be redelivered.
- dead letters finished before the cutoff: replayed, or their review case resolved (`payflow
  review resolve ID --action explain` is how one is discarded). An open one, poison or not,
  stays until an operator finishes it. Its review case stays too: it is the operator's record.

Each batch is one DELETE of at most `batch` rows, its own short transaction; rows another
transaction holds are skipped (SKIP LOCKED), so a prune never waits on a worker, nor a worker
long on it, and any number of sweeper replicas may prune at once.
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

import asyncpg
import structlog

from infra.settings import Settings, check_retention_days

log = structlog.get_logger()
# Rows per DELETE: small enough that each transaction is short (tens of ms), large enough
# that a day of traffic goes in a few hundred statements.
PRUNE_BATCH = 5_000

Db: TypeAlias = asyncpg.Pool | asyncpg.Connection


@dataclass(frozen=True)
class PruneResult:
    """Rows pruned (or, in a dry run, due) per table, and what is past the cutoff yet kept."""

    cutoff: datetime
    dry_run: bool
    inbox: int
    outbox: int
    dead_letters: int
    # Past the cutoff but kept: outbox rows never published (the relay still owes them) and
    # dead letters nobody has finished (each is, or should be, in front of an operator).
    unpublished_kept: int
    open_dead_letters_kept: int

    @property
    def deleted(self) -> dict[str, int]:
        return {"inbox": self.inbox, "outbox": self.outbox, "dead_letters": self.dead_letters}

    def as_json(self) -> dict[str, object]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "dry_run": self.dry_run,
            "deleted": self.deleted,  # in a dry run: what would be
            "kept": {
                "unpublished_outbox": self.unpublished_kept,
                "open_dead_letters": self.open_dead_letters_kept,
            },
        }


def cutoff_for(now: datetime, retention_days: int) -> datetime:
    """Rows older than this are due; refuses a retention shorter than redelivery can reach."""
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    check_retention_days(retention_days)
    return now - timedelta(days=retention_days)


@dataclass(frozen=True)
class _Table:
    name: str
    # The leading column of the table's prune index (0020): walked one value at a time, since
    # PostgreSQL 15 cannot skip-scan it. None: the table is small and scanned.
    key: str | None
    # When a row is due, with {c} for the cutoff.
    due: str


# Names below are ours, never text from outside.
# A dead letter's review case (workers/runtime/dead_letters.py, case_subject), if resolved.
_RESOLVED_CASE = """SELECT 1 FROM review_cases r
     WHERE r.kind = 'dead_letter' AND r.subject = 'dead_letter:' || dead_letters.dead_letter_id
       AND r.state = 'resolved'"""
_FINISHED = "(replayed_at < {c} OR EXISTS (" + _RESOLVED_CASE + " AND r.resolved_at < {c}))"
_OPEN = "replayed_at IS NULL AND NOT EXISTS (" + _RESOLVED_CASE + ")"
_INBOX = _Table("inbox", "consumer", "processed_at < {c}")
# A marked row goes once published before the cutoff; an unmarked one once created before
# it, unless a pending row says it is still owed (a producer without an input topic). A
# stage's rows have no pending row and are marked only when a redelivery publishes them.
_OUTBOX = _Table(
    "outbox",
    "topic",
    "created_at < {c} AND (published_at < {c} OR (published_at IS NULL AND NOT EXISTS"
    " (SELECT 1 FROM outbox_pending p WHERE p.outbox_id = outbox.outbox_id)))",
)
_DEAD_LETTERS = _Table("dead_letters", None, "failed_at < {c} AND " + _FINISHED)


async def prune(
    db: Db,
    settings: Settings,
    now: datetime | None = None,
    *,
    batch: int = PRUNE_BATCH,
    dry_run: bool = False,
) -> PruneResult:
    """Prune everything due at `now` (default: the current time), batch after batch until
    nothing due is left; with `dry_run`, only count it. Given a pool, each batch takes a
    connection of its own; given a connection, do not call this inside a transaction."""
    cutoff = cutoff_for(now or datetime.now(UTC), settings.retention_days)
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    inbox = await _table(db, _INBOX, cutoff, batch, dry_run)
    outbox = await _table(db, _OUTBOX, cutoff, batch, dry_run)
    dead_letters = await _table(db, _DEAD_LETTERS, cutoff, batch, dry_run)
    unpublished = await db.fetchval(
        """SELECT count(*) FROM outbox_pending p JOIN outbox o USING (outbox_id)
            WHERE p.created_at < $1 AND o.published_at IS NULL""",
        cutoff,
    )
    unfinished = await db.fetchval(
        "SELECT count(*) FROM dead_letters WHERE failed_at < $1 AND " + _OPEN,
        cutoff,
    )
    return PruneResult(cutoff, dry_run, inbox, outbox, dead_letters, unpublished, unfinished)


async def _table(db: Db, t: _Table, cutoff: datetime, batch: int, dry_run: bool) -> int:
    if t.key is None:
        return await _drain(db, t, (), cutoff, batch, dry_run)
    total = 0
    for value in await _keys(db, t):
        total += await _drain(db, t, (value,), cutoff, batch, dry_run)
    return total


async def _keys(db: Db, t: _Table) -> list[str]:
    """The distinct values of the table's key (a few consumers or topics), read by walking its
    index from one value to the next instead of scanning every row."""
    rows = await db.fetch(
        f"""WITH RECURSIVE k(v) AS (
                (SELECT {t.key} FROM {t.name} ORDER BY {t.key} LIMIT 1)
                UNION ALL
                SELECT (SELECT {t.key} FROM {t.name} WHERE {t.key} > k.v ORDER BY {t.key} LIMIT 1)
                  FROM k WHERE k.v IS NOT NULL)
            SELECT v FROM k WHERE v IS NOT NULL"""
    )
    return [r["v"] for r in rows]


async def _drain(
    db: Db, t: _Table, key: tuple[str, ...], cutoff: datetime, batch: int, dry_run: bool
) -> int:
    where = (f"{t.key} = $1 AND " if key else "") + t.due.format(c=f"${len(key) + 1}")
    if dry_run:
        n: int = await db.fetchval(f"SELECT count(*) FROM {t.name} WHERE {where}", *key, cutoff)
        return n
    limit = f"${len(key) + 2}"
    sql = f"""DELETE FROM {t.name} WHERE ctid = ANY(ARRAY(
                  SELECT ctid FROM {t.name} WHERE {where} LIMIT {limit} FOR UPDATE SKIP LOCKED))"""
    total = 0
    while True:
        status: str = await db.execute(sql, *key, cutoff, batch)
        n = int(status.split()[-1])
        total += n
        if n < batch:  # nothing due is left, or only rows another transaction holds
            return total
        await asyncio.sleep(0)  # let the process's other work in between batches


async def prune_forever(
    pool: asyncpg.Pool, settings: Settings, clock: Callable[[], float] = time.time
) -> None:
    """Prune at once, then every PAYFLOW_RETENTION_INTERVAL_S, until cancelled (a batch cut
    short rolls back). A failed pass (Postgres away) is logged and tried again next time."""
    while True:
        try:
            result = await prune(pool, settings, datetime.fromtimestamp(clock(), UTC))
        except Exception as exc:  # logged, tried again at the next interval
            log.error("retention_prune_failed", error_class=type(exc).__name__, error=str(exc))
        else:
            report(result)
        await asyncio.sleep(settings.retention_interval_s)


def report(result: PruneResult) -> None:
    """Log a pass: what went at info, what is past the cutoff and kept as a warning."""
    if any(result.deleted.values()):
        log.info("retention_pruned", cutoff=result.cutoff.isoformat(), **result.deleted)
    if result.unpublished_kept or result.open_dead_letters_kept:
        log.warning(
            "retention_kept_past_cutoff",
            cutoff=result.cutoff.isoformat(),
            unpublished_outbox=result.unpublished_kept,
            open_dead_letters=result.open_dead_letters_kept,
            note="unpublished rows wait for the relay; open dead letters for `payflow dlq`",
        )
