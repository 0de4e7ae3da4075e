"""The delivery tables pruned past PAYFLOW_RETENTION_DAYS, on a scratch database of real
Postgres: old inbox rows, published outbox rows and finished dead letters go, in batches of a
bounded size; young rows, unpublished outbox rows and open dead letters stay. A retention
shorter than our topics keep a message is refused before anything is deleted."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio

from infra.ports import free_port
from infra.settings import Settings
from tests.integration.test_cli import error_line, payflow
from tests.support.pipeline import eventually
from tests.support.services import create_scratch, drop_scratch
from workers.runtime import retention
from workers.runtime.db import create_pool
from workers.runtime.dead_letters import case_subject

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
DAY = timedelta(days=1)
BATCH = 40


@dataclass(frozen=True)
class Scratch:
    settings: Settings
    pool: asyncpg.Pool


@pytest_asyncio.fixture(scope="module")
async def scratch(services: Settings) -> AsyncIterator[Scratch]:
    settings = await create_scratch(services, "retention")
    pool = await create_pool(settings, max_size=4)
    try:
        yield Scratch(settings, pool)
    finally:
        await pool.close()
        await drop_scratch(settings)


@pytest_asyncio.fixture
async def db(scratch: Scratch) -> asyncpg.Pool:
    await scratch.pool.execute("TRUNCATE inbox, outbox, dead_letters, review_cases CASCADE")
    return scratch.pool


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


async def plant_inbox(pool: asyncpg.Pool, consumer: str, n: int, at: datetime) -> None:
    await pool.execute(
        """INSERT INTO inbox (consumer, event_id, topic, kafka_partition, kafka_offset,
                              processed_at)
           SELECT $1, gen_random_uuid(), 't', 0, i, $2 FROM generate_series(1, $3) AS i""",
        consumer,
        at,
        n,
    )


async def plant_outbox(
    pool: asyncpg.Pool,
    topic: str,
    n: int,
    created: datetime,
    published: datetime | None,
    *,
    tracked: bool = True,
) -> None:
    # An unpublished row is owed, as outbox.store_many records it (migration 0022); a
    # stage's rows (tracked=False) are not marked and have no pending row.
    await pool.execute(
        """WITH planted AS (
               INSERT INTO outbox (producer, cause_event_id, event_id, topic, message_key,
                                   message_value, created_at, published_at)
               SELECT 'p', gen_random_uuid(), gen_random_uuid(), $1, 'k', '\\x00'::bytea, $2, $3
               FROM generate_series(1, $4)
               RETURNING outbox_id, created_at, published_at
           )
           INSERT INTO outbox_pending (outbox_id, created_at)
           SELECT outbox_id, created_at FROM planted WHERE published_at IS NULL AND $5""",
        topic,
        created,
        published,
        n,
        tracked,
    )


async def plant_dead_letter(
    pool: asyncpg.Pool,
    reason: str,
    failed: datetime,
    replayed: datetime | None = None,
    case: str | None = None,
    resolved: datetime | None = None,
) -> int:
    """A dead letter; `case` 'open' or 'resolved' gives it a review case in that state."""
    dead_letter_id: int = await pool.fetchval(
        """INSERT INTO dead_letters (consumer, source_topic, source_partition, source_offset,
               reason_code, detail, attempts, failed_at, replayed_at)
           VALUES ('settlement', 't', 0, $1, $2, 'planted', 1, $3, $4)
           RETURNING dead_letter_id""",
        uuid.uuid4().int % 2**62,
        reason,
        failed,
        replayed,
    )
    if case is not None:
        await pool.execute(
            """INSERT INTO review_cases (kind, subject, reason, state, resolution, resolved_by,
                                         resolved_at)
               VALUES ('dead_letter', $1, 'planted', $2, $3, $4, $5)""",
            case_subject(dead_letter_id),
            case,
            "explain" if case == "resolved" else None,
            "tester" if case == "resolved" else None,
            resolved,
        )
    return dead_letter_id


async def counts(pool: asyncpg.Pool) -> dict[str, int]:
    row = await pool.fetchrow(
        """SELECT (SELECT count(*) FROM inbox) inbox, (SELECT count(*) FROM outbox) outbox,
                  (SELECT count(*) FROM dead_letters) dead_letters"""
    )
    assert row is not None
    return dict(row)


async def plant_everything(pool: asyncpg.Pool) -> dict[str, set[int]]:
    """Rows on both sides of a 7-day cutoff; returns the dead letter ids that must go / stay."""
    await plant_inbox(pool, "order_build", 2 * BATCH + 7, ago(9.5))  # several batches
    await plant_inbox(pool, "settlement", 3, ago(7.1))
    await plant_inbox(pool, "order_build", 5, ago(6.9))  # young: kept
    await plant_inbox(pool, "settlement", 4, ago(0))
    await plant_outbox(pool, "orders.built", BATCH + 1, ago(10), ago(10))
    await plant_outbox(pool, "funds.frozen", 2, ago(8), ago(7.5))
    await plant_outbox(pool, "orders.built", 6, ago(10), None)  # unpublished: kept
    await plant_outbox(pool, "funds.frozen", 3, ago(10), ago(2))  # published late: kept
    await plant_outbox(pool, "funds.frozen", 4, ago(1), ago(1))  # young: kept
    go = {
        await plant_dead_letter(pool, "unhandled_error", ago(20), ago(8), "resolved", ago(8)),
        await plant_dead_letter(pool, "forged_callback", ago(9), None, "resolved", ago(8)),
        await plant_dead_letter(pool, "not_json", ago(9), ago(8)),  # poison, replayed
    }
    stay = {
        await plant_dead_letter(pool, "unhandled_error", ago(30), None, "open"),
        await plant_dead_letter(pool, "not_json", ago(30)),  # poison, never finished
        await plant_dead_letter(pool, "forged_callback", ago(9), None, "resolved", ago(2)),
        await plant_dead_letter(pool, "unhandled_error", ago(9), ago(1), "resolved", ago(1)),
        await plant_dead_letter(pool, "unhandled_error", ago(2), None, "open"),
    }
    return {"go": go, "stay": stay}


async def test_due_rows_go_and_everything_owed_or_young_stays(
    db: asyncpg.Pool, scratch: Scratch
) -> None:
    planted = await plant_everything(db)
    assert scratch.settings.retention_days == 7

    result = await retention.prune(db, scratch.settings, NOW, batch=BATCH)

    assert result.deleted == {"inbox": 2 * BATCH + 10, "outbox": BATCH + 3, "dead_letters": 3}
    assert (result.unpublished_kept, result.open_dead_letters_kept) == (6, 2)
    assert await counts(db) == {"inbox": 9, "outbox": 13, "dead_letters": 5}
    left = {r["dead_letter_id"] for r in await db.fetch("SELECT dead_letter_id FROM dead_letters")}
    assert left == planted["stay"]
    assert (
        await db.fetchval(
            "SELECT count(*) FROM outbox WHERE published_at IS NULL AND created_at < $1", ago(7)
        )
        == 6
    )
    # The young and the owed, exactly: nothing past the cutoff is left but what is kept.
    assert await db.fetchval("SELECT count(*) FROM inbox WHERE processed_at < $1", ago(7)) == 0
    # Review cases are the operators' record: a pruned dead letter's case stays.
    assert await db.fetchval("SELECT count(*) FROM review_cases") == 6

    again = await retention.prune(db, scratch.settings, NOW, batch=BATCH)
    assert again.deleted == {"inbox": 0, "outbox": 0, "dead_letters": 0}


async def test_a_stages_rows_go_once_written_before_the_cutoff(
    db: asyncpg.Pool, scratch: Scratch
) -> None:
    """A stage's rows are not marked (they are owed until their causes' offsets are
    committed, and no cause that old can be redelivered); a producer's unpublished row is
    kept while it is pending, however old."""
    await plant_outbox(db, "orders.built", 5, ago(8), None, tracked=False)
    await plant_outbox(db, "orders.built", 2, ago(6), None, tracked=False)  # young: kept
    await plant_outbox(db, "funds.frozen", 3, ago(9), None)  # a producer's, owed: kept

    result = await retention.prune(db, scratch.settings, NOW, batch=BATCH)

    assert result.deleted["outbox"] == 5
    assert result.unpublished_kept == 3
    kept = await db.fetch("SELECT created_at FROM outbox ORDER BY created_at")
    assert [r["created_at"] for r in kept] == [ago(9)] * 3 + [ago(6)] * 2


async def test_a_dry_run_counts_what_a_prune_deletes_and_deletes_nothing(
    db: asyncpg.Pool, scratch: Scratch
) -> None:
    await plant_everything(db)
    before = await counts(db)
    dry = await retention.prune(db, scratch.settings, NOW, batch=BATCH, dry_run=True)
    assert await counts(db) == before
    real = await retention.prune(db, scratch.settings, NOW, batch=BATCH)
    assert dry.deleted == real.deleted
    assert dry.dry_run and not real.dry_run


async def test_a_retention_shorter_than_the_topics_is_refused_before_deleting(
    db: asyncpg.Pool, scratch: Scratch
) -> None:
    await plant_everything(db)
    before = await counts(db)
    # model_copy skips the settings' validation: prune checks again at its start.
    short = scratch.settings.model_copy(update={"retention_days": 2})
    with pytest.raises(ValueError, match="shorter than our Kafka topics"):
        await retention.prune(db, short, NOW)
    assert await counts(db) == before


async def test_a_longer_retention_keeps_more(db: asyncpg.Pool, scratch: Scratch) -> None:
    await plant_everything(db)
    longer = scratch.settings.model_copy(update={"retention_days": 9})
    result = await retention.prune(db, longer, NOW, batch=BATCH)
    # Only what is older than 9 days: inbox at 9 days minus a moment, outbox made 10 days ago
    # and published then, no dead letter finished that long ago.
    assert result.deleted == {"inbox": 2 * BATCH + 7, "outbox": BATCH + 1, "dead_letters": 0}


async def test_the_sweeper_pruner_prunes_on_its_own(db: asyncpg.Pool, scratch: Scratch) -> None:
    await plant_everything(db)
    pruner = asyncio.create_task(retention.prune_forever(db, scratch.settings))
    try:

        async def pruned() -> bool:
            return await counts(db) == {"inbox": 9, "outbox": 13, "dead_letters": 5}

        await eventually(pruned, 20, "old rows pruned by prune_forever")
    finally:
        pruner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pruner


async def test_the_cli_prints_what_it_deleted_per_table(db: asyncpg.Pool, scratch: Scratch) -> None:
    await plant_everything(db)
    env = {"PAYFLOW_PG_DATABASE": scratch.settings.pg_database}
    dry = await asyncio.to_thread(payflow, "prune", "--dry-run", "--json", env=env)
    assert dry.returncode == 0, dry.stderr
    would = json.loads(dry.stdout)
    assert would["dry_run"] is True
    assert would["deleted"] == {"inbox": 2 * BATCH + 10, "outbox": BATCH + 3, "dead_letters": 3}
    assert would["kept"] == {"unpublished_outbox": 6, "open_dead_letters": 2}

    done = await asyncio.to_thread(payflow, "prune", env=env)
    assert done.returncode == 0, done.stderr
    assert f"inbox: deleted {2 * BATCH + 10}" in done.stdout
    assert f"outbox: deleted {BATCH + 3}" in done.stdout
    assert "dead_letters: deleted 3" in done.stdout
    assert "kept 6 unpublished" in done.stdout
    assert await counts(db) == {"inbox": 9, "outbox": 13, "dead_letters": 5}


async def test_the_cli_refuses_in_one_line(scratch: Scratch) -> None:
    short = await asyncio.to_thread(
        payflow, "prune", env={"PAYFLOW_RETENTION_DAYS": "3", "PAYFLOW_PG_DATABASE": "x"}
    )
    assert "PAYFLOW_RETENTION_DAYS" in error_line(short)
    dsn = f"postgresql://payflow@127.0.0.1:{free_port()}/x"
    gone = await asyncio.to_thread(payflow, "prune", env={"PAYFLOW_PG_DSN": dsn})
    assert "cannot reach PostgreSQL" in error_line(gone)
