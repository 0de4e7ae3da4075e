"""`payflow recon`: reconcile a day against the gateway's statement, and resolve exceptions
(docs/reconciliation.md). Exit 0: no exception; 1: exceptions (or a refused action); 2: a
bad argument, an unreadable statement or an unreachable gateway."""

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from infra.settings import Settings
from workers.cli.aio import run_async
from workers.cli.failures import CliError
from workers.cli.params import CONTEXT_SETTINGS, operator_name

DEFAULT_GRACE_S = 900.0


@click.group(
    context_settings=CONTEXT_SETTINGS,
    invoke_without_command=True,
    short_help="Reconcile a day against the gateway's statement; resolve exceptions.",
)
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    help="The UTC day to reconcile.",
)
@click.option(
    "--statement",
    "statement_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the statement from this CSV file (docs/gateway-api.md) instead of the gateway.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--grace-s",
    type=click.FloatRange(min=0),
    default=DEFAULT_GRACE_S,
    envvar="PAYFLOW_RECON_GRACE_S",
    help="Records of ours still in flight and created this close to the cut-off are pending, "
    "not exceptions [env PAYFLOW_RECON_GRACE_S].",
)
@click.pass_context
def recon(
    ctx: click.Context,
    day: datetime | None,
    statement_file: Path | None,
    as_json: bool,
    grace_s: float,
) -> int | None:
    """Classify every line of the gateway's statement for a UTC day and every record of ours
    (charges, gateway refunds, payouts) as matched, pending or an exception (missing_ours,
    missing_gateway, amount_mismatch, status_mismatch, currency_mismatch, duplicate). Each
    exception opens a review case; fees of matched lines are booked once. Exit 0 only when
    there is no exception."""
    if ctx.invoked_subcommand is not None:
        return None
    if day is None:
        raise click.UsageError("--date is required (or a subcommand: resolve)")
    from workers.cli.commands import load_settings

    settings = load_settings()
    return run_async(main_recon(settings, day.date(), statement_file, as_json, grace_s))


@recon.command(context_settings=CONTEXT_SETTINGS)
@click.argument("target", metavar="CASE_ID|DAY:REF")
@click.option(
    "--action",
    type=click.Choice(["refund", "create", "relink", "explain"]),
    required=True,
    help="refund a charge we did not sell for; create (record) the charge we lack; relink the "
    "line to another record of ours (--to); explain (mark understood).",
)
@click.option("--reason", required=True, help="Why (kept in the operator action log).")
@click.option("--to", "to", default=None, help="relink only: the reference of our record.")
@click.option(
    "--operator",
    default=None,
    help="Who acts [env PAYFLOW_OPERATOR, then USER].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def resolve(
    target: str, action: str, reason: str, to: str | None, operator: str | None, as_json: bool
) -> int:
    """Resolve a reconciliation exception: by review case id, or DAY:REF (the gateway's
    reference or ours). Idempotent; logged with who, when, what and why; closes the case."""
    from workers.cli.commands import load_settings
    from workers.recon.resolve import BadTarget, parse_target

    who = operator_name(operator)
    if not reason.strip():
        raise click.UsageError("--reason must not be empty")
    if to is not None and action != "relink":
        raise click.UsageError("--to applies to --action relink only")
    try:
        parse_target(target)
    except BadTarget as exc:
        raise click.BadParameter(str(exc), param_hint="CASE_ID|DAY:REF") from None
    settings = load_settings()
    return run_async(main_resolve(settings, target, action, reason.strip(), who, to, as_json))


async def main_recon(
    settings: Settings, day: date, statement_file: Path | None, as_json: bool, grace_s: float
) -> int:
    from workers.gateway.adapters.statement_csv import MalformedStatement
    from workers.gateway.port import GatewayRefused, GatewayUnknown
    from workers.recon.run import BadStatement, fetch_statement, reconcile
    from workers.runtime.db import create_pool

    try:
        if statement_file is not None:
            statement = _read_file(statement_file)
            source = f"file:{statement_file}"
        else:
            statement = await fetch_statement(settings, day)
            source = "gateway"
    except (GatewayUnknown, GatewayRefused) as exc:
        raise CliError(
            f"cannot get the gateway's statement for {day} at {settings.gateway_url}: {exc}; "
            "check PAYFLOW_GATEWAY_URL or pass --statement FILE",
            2,
        ) from exc
    except MalformedStatement as exc:
        raise CliError(f"the statement for {day} is malformed: {exc}", 2) from exc
    pool = await create_pool(settings, max_size=2)
    try:
        report = await reconcile(pool, day, statement, source=source, grace_s=grace_s)
    except BadStatement as exc:
        raise CliError(f"{source}: {exc}", 2) from exc
    finally:
        await pool.close()
    report.pop("run_id", None)
    if as_json:
        print(json.dumps(report, indent=2, default=str))
    else:
        _print_report(report, source)
    return 0 if report["ok"] else 1


def _read_file(path: Path) -> Any:
    from workers.gateway.adapters.statement_csv import parse_statement

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CliError(f"cannot read the statement {path}: {reason}", 2) from exc
    return parse_statement(text)


def _print_report(report: dict[str, Any], source: str) -> None:
    found = sum(len(v) for v in report["exceptions"].values())
    print(
        f"recon {report['date']} ({source}): {report['matched']} matched, "
        f"{report['pending']} pending, {report['explained']} explained, {found} exception(s)"
    )
    for category, rows in sorted(report["exceptions"].items()):
        for row in rows:
            print(
                f"  {category:<17} {row['kind']:<7} {row['gateway_ref'] or '-':<24} "
                f"{row['reference']:<24} case {row['case_id']}  {row['detail']}"
            )
    fees = ", ".join(f"{cur} {amount}" for cur, amount in sorted(report["fees"].items()))
    print(f"gateway fees of matched charges (minor units): {fees or 'none'}")
    print("reconciled" if report["ok"] else "exceptions: see `payflow recon resolve --help`")


async def main_resolve(
    settings: Settings,
    target: str,
    action: str,
    reason: str,
    operator: str,
    to: str | None,
    as_json: bool,
) -> int:
    from workers.recon.resolve import Refused, resolve
    from workers.runtime.db import create_pool

    pool = await create_pool(settings, max_size=2)
    try:
        try:
            done = await resolve(pool, target, action, reason, operator, to)
        except Refused as exc:
            raise CliError(str(exc), 1) from exc
        published = await _publish(settings, pool, done.messages)
    finally:
        await pool.close()
    out = {
        "case_id": done.case_id,
        "action": done.action,
        "outcome": done.outcome,
        "repeated": done.repeated,
        "detail": done.detail,
        "events": len(done.messages),
        "published": published,
    }
    if as_json:
        print(json.dumps(out, indent=2, default=str))
    else:
        again = " (already done: nothing new)" if done.repeated else ""
        print(f"case {done.case_id}: {action} -> {done.outcome}{again}")
        if done.messages and not published:
            print("events stored in the outbox; the sweeper publishes them (Kafka unreachable)")
    return 0


async def _publish(settings: Settings, pool: Any, messages: list[Any]) -> bool:
    """Publish what the action decided; when Kafka is down the outbox keeps it and the
    sweeper's republish sends it (same event ids: consumers drop copies)."""
    if not messages:
        return True
    from aiokafka.errors import KafkaError

    from workers.runtime.kafka import make_producer
    from workers.runtime.publisher import publish

    producer = make_producer(settings, "payflow-recon")
    try:
        await producer.start()
        await publish(producer, pool, messages)
    except (KafkaError, OSError):
        return False
    finally:
        await producer.stop()
    return True
