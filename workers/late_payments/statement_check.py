"""The gateway side of the audit: the gateway's statement for a day against our records.

Every charge the gateway reports must have a payment record of ours (its reference is our
payment id); one whose reference we do not know is money taken in our name that nothing on
our side accounts for. A charge of a known payment that no callback or query told us about
is listed too: the sweeper has not learned it yet (a lost callback, an unannounced charge).
"""

from datetime import date
from typing import Any

import asyncpg

from workers.gateway.port import Gateway, StatementLine


async def statement(adapters: list[Gateway], day: date) -> list[StatementLine]:
    """The day's statement from every adapter. Adapters of one gateway house serve the same
    statement, so a line another adapter already gave is not added again; copies within one
    statement are kept (reconciliation reports them as duplicates)."""
    out: list[StatementLine] = []
    seen: set[tuple[str, str]] = set()
    for adapter in adapters:
        got = await adapter.statement(day)
        out += [x for x in got if (x.kind, x.gateway_ref) not in seen]
        seen |= {(x.kind, x.gateway_ref) for x in got}
    return out


async def statement_lines(adapters: list[Gateway], day: date) -> list[StatementLine]:
    """The day's charges, once each."""
    lines: dict[str, StatementLine] = {}
    for line in await statement(adapters, day):
        if line.kind == "charge":
            lines.setdefault(line.gateway_ref, line)
    return list(lines.values())


async def compare(conn: asyncpg.Connection, lines: list[StatementLine]) -> list[dict[str, Any]]:
    """Violations, in the audit's shape (check, rule, row)."""
    known = await conn.fetch(
        """SELECT s.ref, s.reference, r.payment_id IS NOT NULL AS has_payment,
                  g.gateway_ref IS NOT NULL AS recorded
           FROM unnest($1::text[], $2::text[]) AS s(ref, reference)
           LEFT JOIN payment_requests r ON r.payment_id = s.reference
           LEFT JOIN gateway_charges g ON g.gateway_ref = s.ref""",
        [line.gateway_ref for line in lines],
        [line.reference for line in lines],
    )
    by_ref = {line.gateway_ref: line for line in lines}
    out: list[dict[str, Any]] = []
    for row in known:
        line = by_ref[row["ref"]]
        if row["has_payment"] and row["recorded"]:
            continue
        check, rule = (
            ("gateway_charges_recorded", "every charge of a known payment is in our records")
            if row["has_payment"]
            else (
                "gateway_charges_have_payments",
                "every charge the gateway reports has a payment record",
            )
        )
        out.append(
            {
                "check": check,
                "rule": rule,
                "row": {
                    "gateway_ref": line.gateway_ref,
                    "reference": line.reference,
                    "amount": str(line.amount),
                    "status": line.status,
                    "day": line.day.isoformat(),
                },
            }
        )
    return out
