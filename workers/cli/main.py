"""`payflow`: services, migrations, workers, dead letters, audit and the demo.

`main(argv)` runs one command and returns its exit code. It is the one place failures are
reported: one line on stderr (see workers/cli/errors.py), never a traceback unless asked.
"""

import logging
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from types import FrameType

import click

from infra.settings import Settings, get_settings
from workers.cli.commands import account, audit, bench, demo, migrate, run, services
from workers.cli.dlq_commands import dlq
from workers.cli.failures import CliError, Interrupted
from workers.cli.params import CONTEXT_SETTINGS
from workers.cli.prune import prune
from workers.cli.recon import recon
from workers.cli.review import review

_debug = {"on": False}  # set by --debug for the command being run


@click.group(context_settings=CONTEXT_SETTINGS)
@click.option("--debug", is_flag=True, help="Show the traceback of a failure.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """payflow: a message-driven payment engine (Kafka stages over PostgreSQL)."""
    from workers.runtime.logs import configure_logging

    settings = _settings()
    level = settings.log_level.upper() if settings is not None else "INFO"
    if level not in logging.getLevelNamesMapping():
        raise CliError(
            f"invalid configuration: PAYFLOW_LOG_LEVEL: unknown level {level!r}; "
            "use DEBUG, INFO, WARNING or ERROR"
        )
    _debug["on"] = debug or level == "DEBUG"
    if ctx.invoked_subcommand == "run":
        collapse_s = settings.log_collapse_s if settings is not None else 10.0
        configure_logging("DEBUG" if debug else level, collapse_s)
        return
    # Other commands print what they do; logs only for warnings (or everything with --debug).
    configure_logging("DEBUG" if debug else "WARNING")
    if not _debug["on"]:
        # aiokafka logs every refused connection; the command reports it once, in one line.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


for command in (services, migrate, run, dlq, audit, account, demo, bench, recon, review, prune):
    cli.add_command(command)


def _settings() -> Settings | None:
    try:
        return get_settings()
    except Exception:  # invalid configuration is reported by the command itself
        return None


def _usage_error(exc: click.ClickException) -> int:
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        exc.show()  # `payflow dlq` alone: the help, as Click prints it
        return exc.exit_code
    ctx = exc.ctx if isinstance(exc, click.UsageError) else None
    hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    click.echo(f"error: {exc.format_message()}{hint}", err=True)
    return exc.exit_code


def _stop(signum: int, _: FrameType | None) -> None:
    raise Interrupted(signum)


def main(argv: Sequence[str] | None = None) -> int:
    _debug["on"] = False
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if in_main_thread else None
    if previous is signal.SIG_DFL:
        # SIGTERM before a command's event loop runs (or in a command without one) ends it
        # like Ctrl-C does: one line, exit 143. Async commands replace this (workers/cli/aio.py).
        signal.signal(signal.SIGTERM, _stop)
    try:
        return _run(argv)
    finally:
        if previous is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, previous)


def _run(argv: Sequence[str] | None) -> int:
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="payflow",
            standalone_mode=False,
        )
    except click.ClickException as exc:
        return _usage_error(exc)
    except click.Abort:  # Click's form of Ctrl-C while it parses
        click.echo("error: interrupted by SIGINT", err=True)
        return 130
    except (Exception, KeyboardInterrupt) as exc:
        from workers.cli.errors import describe  # the drivers' exception types: only now

        failure = describe(exc, _settings())
        if _debug["on"]:
            traceback.print_exception(exc)
        click.echo(f"error: {failure.line}", err=True)
        return failure.exit_code
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
