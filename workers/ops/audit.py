"""The audit: every money invariant that applies so far (FIELD-NOTES section 4), in one
snapshot: our books (audit_books.py), the references no foreign key enforces
(audit_references.py) and the gateway edge (audit_gateway.py); `payflow audit`.
"""

import json
import sys
from datetime import date
from typing import Any

import asyncpg

from infra.settings import Settings, get_settings
from workers.gateway.port import GatewayRefused, GatewayUnknown
from workers.ops.audit_books import BOOKS
from workers.ops.audit_gateway import GATEWAY, deadlines, gateway_audit
from workers.ops.audit_references import REFERENCE_CHECKS
from workers.runtime.db import connect

__all__ = ["CHECKS", "gateway_audit", "main_audit", "run_audit"]  # gateway_audit: re-exported

CHECKS = [*BOOKS, *REFERENCE_CHECKS, *GATEWAY]


async def run_audit(
    conn: asyncpg.Connection, settings: Settings | None = None, *, liveness: bool = True
) -> dict[str, Any]:
    violations: list[dict[str, Any]] = []
    checked: dict[str, int] = {}
    limits = deadlines(settings or get_settings())
    # One snapshot for every check, so a pipeline still running cannot fake a violation.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        for check in (c for c in CHECKS if liveness or not c.liveness):
            checked[check.name] = int(await conn.fetchval(check.count_sql) or 0)
            sql = check.violations_sql.format(**limits)
            for row in await conn.fetch(sql + " LIMIT 50"):
                violations.append(
                    {
                        "check": check.name,
                        "rule": check.what,
                        "row": {k: _plain(v) for k, v in dict(row).items()},
                    }
                )
    return {"ok": not violations, "violations": violations, "checked": checked}


def _plain(value: Any) -> Any:
    return value if isinstance(value, (int, str, bool, type(None))) else str(value)


async def main_audit(settings: Settings, *, as_json: bool, gateway_day: date | None = None) -> int:
    """The DB audit; with `gateway_day`, the gateway's statement for that day too (exits 1
    with one line when the gateway cannot be asked)."""
    conn = await connect(settings)
    try:
        report = await run_audit(conn, settings)
        if gateway_day is not None:
            try:
                await gateway_audit(conn, settings, gateway_day, report)
            except (GatewayUnknown, GatewayRefused) as exc:
                print(
                    f"audit: gateway statement for {gateway_day} unavailable: {exc}",
                    file=sys.stderr,
                )
                return 1
    finally:
        await conn.close()
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        for name, n in report["checked"].items():
            bad = [v for v in report["violations"] if v["check"] == name]
            print(f"{'FAIL' if bad else 'ok  '} {name} ({n} checked)")
            for v in bad:
                print(f"       {v['row']}")
        print("audit clean" if report["ok"] else f"{len(report['violations'])} violation(s)")
    return 0 if report["ok"] else 1
