"""`payflow bench`'s output: a table for people, one JSON object with --json."""

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from infra.services import manager
from infra.settings import Settings
from workers.bench.phases import BenchTimeout
from workers.bench.procstats import ProcStatsUnavailable
from workers.bench.relay import RelayError
from workers.bench.run import Options, bench
from workers.cli.aio import in_daemon_thread
from workers.cli.failures import CliError


def table(result: dict[str, Any]) -> Table:
    t = Table(title="payflow bench")
    t.add_column("measure")
    t.add_column("value", justify="right")
    for key, value in result.items():
        if key == "details":
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        t.add_row(key, str(value))
    return t


async def main_bench(settings: Settings, opts: Options, *, as_json: bool) -> int:
    console = Console(stderr=True)

    def say(text: str) -> None:
        if not as_json:
            console.print(text)

    say("[bold]payflow bench[/]: starting services")
    await in_daemon_thread(lambda: manager.up(settings))
    try:
        result = await bench(settings, opts, say)
    except (BenchTimeout, RelayError, ProcStatsUnavailable) as exc:
        raise CliError(f"bench: {exc}") from None
    if as_json:
        print(json.dumps(result))
    else:
        Console().print(table(result))
        audit = result["details"]["audit"]
        for v in audit["violations"]:
            console.print(f"[red]audit[/] {v['check']}: {v['row']}")
    sys.stdout.flush()
    return 0 if result["audit_ok"] else 1
