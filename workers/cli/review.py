"""`payflow review list|show|resolve`: the manual-review queue from the command line (the
work is in workers/review/)."""

import json
import sys
from typing import Any, cast

import click

from infra.settings import Settings
from workers.cli.aio import run_async
from workers.cli.failures import CliError
from workers.cli.params import CONTEXT_SETTINGS, operator_name
from workers.review.rules import ACTIONS, FITS, Action

KINDS = sorted(FITS)


@click.group(context_settings=CONTEXT_SETTINGS)
def review() -> None:
    """Work the manual-review queue: list cases, show one, resolve it."""


@review.command("list", context_settings=CONTEXT_SETTINGS)
@click.option(
    "--state",
    type=click.Choice(["open", "resolved", "all"]),
    default="open",
    show_default=True,
    help="Cases in this state.",
)
@click.option("--kind", type=click.Choice(KINDS), help="Cases of this kind only.")
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON.")
def list_(state: str, kind: str | None, as_json: bool) -> int:
    """List review cases (open ones unless --state)."""
    return run_async(_list(_settings(), state, kind, as_json))


@review.command(context_settings=CONTEXT_SETTINGS)
@click.argument("case_id", metavar="ID", type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print it as JSON (the default).")
def show(case_id: int, as_json: bool) -> int:
    """One case: its evidence, the order, payment and refund as they stand, the holds, and
    the operator actions so far (JSON)."""
    return run_async(_show(_settings(), case_id))


@review.command(context_settings=CONTEXT_SETTINGS)
@click.argument("case_id", metavar="ID", type=click.IntRange(min=1))
@click.option("--action", type=click.Choice(ACTIONS), required=True, help="What to do.")
@click.option("--reason", required=True, help="Why (kept in the operator action log).")
@click.option("--operator", help="Who acts (default: $PAYFLOW_OPERATOR, else $USER).")
@click.option("--gateway-ref", help="With succeed: the gateway's charge reference, if unknown.")
def resolve(
    case_id: int, action: str, reason: str, operator: str | None, gateway_ref: str | None
) -> int:
    """Resolve a case: succeed (Confirm), fail (Cancel), refund, or explain (close with the
    reason). The same command again answers with its first outcome."""
    who = operator_name(operator)
    if not reason.strip():
        raise CliError("--reason must say why (it is kept in the operator action log)")
    return run_async(_resolve(_settings(), case_id, action, reason, who, gateway_ref))


def _settings() -> Settings:
    from workers.cli.commands import load_settings

    return load_settings()


async def _list(settings: Settings, state: str, kind: str | None, as_json: bool) -> int:
    from workers.review import store
    from workers.runtime.db import create_pool

    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            rows = [dict(r) for r in await store.cases(conn, state, kind)]
    finally:
        await pool.close()
    for r in rows:
        r["evidence"] = (
            json.loads(r["evidence"]) if isinstance(r["evidence"], str) else r["evidence"]
        )
    if as_json:
        print(json.dumps(rows, default=str, indent=2))
        return 0
    for r in rows:
        end = f" -> {r['resolution']} by {r['resolved_by']}" if r["state"] == "resolved" else ""
        print(
            f"#{r['case_id']} [{r['state']}] {r['kind']} {r['subject']}: {r['reason'][:140]}{end}"
        )
    print(f"{len(rows)} case(s)")
    return 0


async def _show(settings: Settings, case_id: int) -> int:
    from workers.runtime.db import create_pool

    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            found = await describe(conn, case_id)
    finally:
        await pool.close()
    if found is None:
        raise CliError(f"no review case {case_id}; see `payflow review list --state all`")
    print(json.dumps(found, default=str, indent=2))
    return 0


async def describe(conn: Any, case_id: int) -> dict[str, Any] | None:
    """The case with everything an operator needs to decide it."""
    from workers.review import facts, rules, store

    row = await store.case(conn, case_id)
    if row is None:
        return None
    c = store.case_of(row)
    f = await facts.facts(conn, c)
    out: dict[str, Any] = {
        **c.__dict__,
        "opened_at": row["opened_at"],
        "resolved_at": row["resolved_at"],
    }
    out["now"] = {k: v for k, v in f.__dict__.items() if k != "kind"}
    if c.order_id:
        out["holds"] = await store.holds(conn, c.order_id)
    if c.state == "open":
        out["actions_that_fit"] = [a for a in rules.ACTIONS if not rules.plan(a, f).refused]
    done = [dict(a) for a in await store.actions(conn, case_id)]
    for a in done:
        a["detail"] = json.loads(a["detail"]) if isinstance(a["detail"], str) else a["detail"]
    out["operator_actions"] = done
    return out


async def _resolve(
    settings: Settings,
    case_id: int,
    action: str,
    reason: str,
    operator: str,
    gateway_ref: str | None,
) -> int:
    from workers.cli.connect import start_producer
    from workers.review.actions import ReviewRefused, resolve
    from workers.runtime.db import create_pool

    pool = await create_pool(settings, max_size=2)
    try:
        producer = await start_producer(settings, "payflow-review")
        try:
            what = cast(Action, action)  # one of ACTIONS: click checked it
            done = await resolve(pool, producer, case_id, what, reason, operator, gateway_ref)
        except ReviewRefused as refused:
            raise CliError(str(refused)) from None
        finally:
            await producer.stop()
    finally:
        await pool.close()
    again = " (the same action again: its first outcome)" if done.repeated else ""
    print(
        json.dumps(
            {"case_id": case_id, "action": action, "outcome": done.outcome, **done.detail},
            default=str,
        )
    )
    if again:
        print(f"case {case_id}: {action} {done.outcome}{again}", file=sys.stderr)
    return 0
