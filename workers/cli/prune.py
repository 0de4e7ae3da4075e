"""`payflow prune [--dry-run] [--json]`: prune the delivery tables now, as the sweeper does
every PAYFLOW_RETENTION_INTERVAL_S (workers/runtime/retention.py), and say what went."""

import json

import click

from workers.cli.aio import run_async
from workers.cli.commands import load_settings
from workers.cli.params import CONTEXT_SETTINGS


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--dry-run", is_flag=True, help="Count what is due; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def prune(dry_run: bool, as_json: bool) -> int:
    """Delete inbox rows, published outbox rows and finished dead letters older than
    PAYFLOW_RETENTION_DAYS, in short batches, and print how many per table. Unpublished
    outbox rows and open dead letters are never deleted (their count is printed)."""
    return run_async(_prune(dry_run=dry_run, as_json=as_json))


async def _prune(*, dry_run: bool, as_json: bool) -> int:
    from workers.runtime import retention
    from workers.runtime.db import create_pool

    settings = load_settings()
    pool = await create_pool(settings, max_size=1)
    try:
        result = await retention.prune(pool, settings, dry_run=dry_run)
    finally:
        await pool.close()
    if as_json:
        print(json.dumps(result.as_json(), indent=2))
        return 0
    verb = "would delete" if dry_run else "deleted"
    when = f"{result.cutoff:%Y-%m-%d %H:%M:%S %Z}"
    print(f"retention {settings.retention_days} day(s): {verb} rows older than {when}")
    for table, n in result.deleted.items():
        print(f"  {table}: {verb} {n}")
    if result.unpublished_kept:
        print(f"  outbox: kept {result.unpublished_kept} unpublished (the relay still owes them)")
    if result.open_dead_letters_kept:
        print(
            f"  dead_letters: kept {result.open_dead_letters_kept} open "
            "(replay or resolve them: `payflow dlq list`, `payflow review list`)"
        )
    return 0
