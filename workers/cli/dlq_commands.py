"""`payflow dlq list|show|replay`: arguments, options and help (the work is in dlq.py)."""

import click

from workers.cli.aio import run_async
from workers.cli.commands import load_settings
from workers.cli.params import CONTEXT_SETTINGS, REASON, STAGE, spelled

STAGE_HELP = f"dead letters of this stage only: {spelled()} (dashes or underscores)."
REASON_HELP = (
    "dead letters with this reason code only (lowercase snake case, e.g. forged_callback)."
)


@click.group(context_settings=CONTEXT_SETTINGS)
def dlq() -> None:
    """Inspect and replay dead letters."""


@dlq.command("list", context_settings=CONTEXT_SETTINGS)
@click.option("--stage", type=STAGE, help="List " + STAGE_HELP)
@click.option("--reason", type=REASON, help="List " + REASON_HELP)
@click.option("--all", "include_replayed", is_flag=True, help="Include replayed ones.")
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON.")
def list_(stage: str | None, reason: str | None, include_replayed: bool, as_json: bool) -> int:
    """List dead letters with their reasons (open ones unless --all)."""
    from workers.cli.dlq import list_dead_letters
    from workers.ops.dead_letters import Filter

    f = Filter(include_replayed, stage, reason)
    return run_async(list_dead_letters(load_settings(), f, as_json=as_json))


@dlq.command(context_settings=CONTEXT_SETTINGS)
@click.argument("dead_letter_id", metavar="ID", type=click.IntRange(min=1))
def show(dead_letter_id: int) -> int:
    """One dead letter, with its message and headers, as JSON."""
    from workers.cli.dlq import show_dead_letter

    return run_async(show_dead_letter(load_settings(), dead_letter_id))


@dlq.command(context_settings=CONTEXT_SETTINGS)
@click.argument("ids", metavar="[ID]...", nargs=-1, type=click.IntRange(min=1))
@click.option("--all", "every", is_flag=True, help="Every open dead letter (with the filters).")
@click.option("--stage", type=STAGE, help="With --all, replay " + STAGE_HELP)
@click.option("--reason", type=REASON, help="With --all, replay " + REASON_HELP)
@click.option("--force", is_flag=True, help="Replay again ones already replayed.")
def replay(
    ids: tuple[int, ...], every: bool, stage: str | None, reason: str | None, force: bool
) -> int:
    """Publish dead letters back to their source topic: the named IDs, or --all. Exit 1 when
    a named one does not exist or was already replayed (without --force)."""
    if bool(ids) == every:
        raise click.UsageError("name dead letter ids, or give --all (not both)")
    if ids and (stage or reason):
        raise click.UsageError("--stage and --reason filter --all; leave them out with ids")
    from workers.cli.dlq import replay_dead_letters
    from workers.ops.dead_letters import Filter

    f = Filter(force, stage, reason)
    return run_async(replay_dead_letters(load_settings(), list(ids), f, force=force))
