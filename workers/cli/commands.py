"""The `payflow` commands: names, arguments, options and help; `payflow dlq` is in
workers/cli/dlq_commands.py.

Each command imports what does the work only when it runs, so `payflow --help` and usage
errors are fast and need no service. Commands return their exit code.
"""

from datetime import datetime

import click
from pydantic import ValidationError

from infra.settings import Settings, get_settings
from workers.cli.aio import run_async
from workers.cli.failures import CliError
from workers.cli.params import CONTEXT_SETTINGS, RUN_TARGET, ZONED_TIME, spelled


def load_settings() -> Settings:
    """The settings, or one line naming the environment variable that is wrong."""
    try:
        return get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        env = "PAYFLOW_" + str(first["loc"][0]).upper() if first["loc"] else "PAYFLOW_*"
        raise CliError(f"invalid configuration: {env}: {first['msg']}; fix or unset it") from exc


@click.group(context_settings=CONTEXT_SETTINGS)
def services() -> None:
    """Start, stop or show the local Kafka, Postgres and Redis. Running ones are reused."""


@services.command(context_settings=CONTEXT_SETTINGS)
def up() -> int:
    """Start what is not running; reuse what already answers."""
    from infra.services.manager import main_services

    return main_services("up", load_settings())


@services.command(context_settings=CONTEXT_SETTINGS)
def down() -> int:
    """Stop the services payflow started; others are left running."""
    from infra.services.manager import main_services

    return main_services("down", load_settings())


@services.command(context_settings=CONTEXT_SETTINGS)
def status() -> int:
    """Show each service; exit 3 when any is down."""
    from infra.services.manager import main_services

    return main_services("status", load_settings())


@click.command(context_settings=CONTEXT_SETTINGS)
def migrate() -> int:
    """Apply the database migrations and create the Kafka topics (idempotent). The database
    is created when it does not exist."""
    from workers.cli.setup import migrate_all

    return run_async(migrate_all(load_settings()))


@click.command(
    context_settings=CONTEXT_SETTINGS,
    short_help="Run one stage, all of them, the webhook, the sweeper or the gateway simulator.",
    help="Run WHAT until SIGTERM or Ctrl-C: one stage (several replicas of it may run), "
    "every stage with the webhook and the sweeper in one process (all), the endpoint "
    "gateways call back (webhook), the resolver of unknown payments and the payment window "
    "(sweeper), or the gateway simulator (gateway-simulator). "
    f"Stages: {spelled()} (dashes or underscores).",
)
@click.argument("what", metavar="WHAT", type=RUN_TARGET)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="NAME=RATE",
    help="gateway-simulator only: a fault mode and its rate in [0,1]; repeatable "
    "(docs/gateway-simulator.md). Adds to PAYFLOW_SIM_FAULTS.",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="gateway-simulator only: seed of the fault selection [env PAYFLOW_SIM_SEED, default 0].",
)
@click.option(
    "--host",
    default=None,
    help="gateway-simulator only: address to bind [env PAYFLOW_SIM_HOST, default 127.0.0.1].",
)
def run(what: str, faults: tuple[str, ...], seed: int | None, host: str | None) -> int:
    from workers.cli.run import SimulatorOptions
    from workers.cli.run import run as run_workers

    options = SimulatorOptions(faults, seed, host)
    if what != "gateway_simulator" and options.given:
        raise click.UsageError("--fault, --seed and --host apply to gateway-simulator only")
    return run_async(run_workers(what, load_settings(), options))


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--gateway",
    "gateway_day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    metavar="YYYY-MM-DD",
    help="Also compare the gateway's settlement statement for this UTC day with our charges.",
)
def audit(as_json: bool, gateway_day: datetime | None) -> int:
    """Check the money invariants in one snapshot. Exit 1 on any violation."""
    from workers.ops.audit import main_audit

    day = gateway_day.date() if gateway_day else None
    return run_async(main_audit(load_settings(), as_json=as_json, gateway_day=day))


@click.group(context_settings=CONTEXT_SETTINGS)
def account() -> None:
    """Account statements."""


@account.command(context_settings=CONTEXT_SETTINGS)
@click.argument("account_id", metavar="ACCOUNT")
@click.option("--since", type=ZONED_TIME, help="From this ISO 8601 time with zone (inclusive).")
@click.option("--until", type=ZONED_TIME, help="Up to this ISO 8601 time with zone (exclusive).")
@click.option("--json", "as_json", is_flag=True, help="Print the statement as JSON.")
def statement(
    account_id: str, since: datetime | None, until: datetime | None, as_json: bool
) -> int:
    """Entries of ACCOUNT (e.g. buyer:buyer-001:wallet:EUR) with their running balance, and
    whether the balance rebuilt from them equals the stored one (exit 1 if not)."""
    from workers.cli.account import print_statement

    return run_async(print_statement(load_settings(), account_id, since, until, as_json=as_json))


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--orders", type=click.IntRange(min=1), default=300, help="How many orders to publish."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON summary instead of progress bars."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    help="Seconds to wait for every order to reach a final state.",
)
def demo(orders: int, as_json: bool, timeout: float) -> int:
    """Push orders through every stage on local services and workers. Services, schema, seed
    data and workers are set up first; ends with a summary and the audit, and exits 0 only
    when every order reached a final state and the audit is clean."""
    from workers.ops.demo import main_demo

    return run_async(main_demo(load_settings(), orders, as_json=as_json, timeout_s=timeout))


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--orders", type=click.IntRange(min=10), default=10_000, help="Orders to drain.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--load",
    type=click.FloatRange(min=0, max=1, min_open=True),
    default=0.5,
    help="Latency phase: offered load as a share of the measured drain rate.",
)
@click.option(
    "--latency-orders",
    type=click.IntRange(min=0),
    default=0,
    help="Orders in the latency phase (default: about 20 s of the offered load).",
)
@click.option(
    "--batch1-orders",
    type=click.IntRange(min=10),
    default=300,
    help="Orders for the batch-size-1 baseline.",
)
@click.option("--hot-merchant", is_flag=True, help="Also drain with 90 % to one merchant.")
@click.option("--no-baselines", is_flag=True, help="Skip the relay and batch-1 baselines.")
@click.option(
    "--keep", is_flag=True, help="Keep the runs' databases (payflow_bench*) and topics (bench*)."
)
@click.option(
    "--layout",
    type=click.Choice(["processes", "one"]),
    default="processes",
    help="Workers as one process per stage (default) or all in one (`payflow run all`).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=1_800.0,
    help="Seconds each phase may take.",
)
@click.option(
    "--history",
    type=click.IntRange(min=0),
    default=0,
    help="Orders drained first on the uniform and hot-merchant runs' databases, unmeasured: "
    "the measured drain starts on a database with that past.",
)
def bench(
    orders: int,
    as_json: bool,
    load: float,
    latency_orders: int,
    batch1_orders: int,
    hot_merchant: bool,
    no_baselines: bool,
    keep: bool,
    layout: str,
    timeout: float,
    history: int,
) -> int:
    """Measure payflow on this machine: drain rate at saturation, latency at a fixed load,
    CPU and memory per process, Postgres round trips per stage, deadlocks, against a bare
    aiokafka relay and batches of one. Exits 1 if an audit is not clean."""
    from workers.bench.report import main_bench
    from workers.bench.run import Options

    opts = Options(
        orders=orders,
        load=load,
        latency_orders=latency_orders,
        batch1_orders=batch1_orders,
        hot_merchant=hot_merchant,
        baselines=not no_baselines,
        keep=keep,
        timeout_s=timeout,
        layout=layout,
        history=history,
    )
    return run_async(main_bench(load_settings(), opts, as_json=as_json))
