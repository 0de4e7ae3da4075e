"""The daily settlement statement CSV (docs/gateway-api.md) read into `StatementLine`s."""

import csv
import io
from datetime import UTC, date, datetime
from typing import Literal, cast

from contracts.money import Money
from workers.gateway.port import StatementLine

COLUMNS = (
    "day",
    "kind",
    "gateway_ref",
    "reference",
    "currency",
    "amount",
    "fee",
    "net",
    "status",
    "occurred_at",
)
KINDS = ("charge", "refund", "payout")


class MalformedStatement(ValueError):
    """The statement does not follow the documented columns; says which line and why."""


def parse_statement(text: str) -> list[StatementLine]:
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if header is None:
        raise MalformedStatement("empty statement: no header row")
    if tuple(h.strip() for h in header) != COLUMNS:
        raise MalformedStatement(f"header {header!r} is not {','.join(COLUMNS)}")
    lines = []
    for number, row in enumerate(rows, start=2):
        if not row:
            continue
        try:
            lines.append(_line(row))
        except (ValueError, TypeError) as exc:
            raise MalformedStatement(f"line {number}: {exc}"[:500]) from exc
    return lines


def _line(row: list[str]) -> StatementLine:
    if len(row) != len(COLUMNS):
        raise ValueError(f"{len(row)} fields, expected {len(COLUMNS)}")
    f = dict(zip(COLUMNS, (v.strip() for v in row), strict=True))
    if f["kind"] not in KINDS:
        raise ValueError(f"kind {f['kind']!r} is not one of {', '.join(KINDS)}")
    currency = f["currency"]
    amount, fee, net = (_minor(f, name) for name in ("amount", "fee", "net"))
    if fee + net != amount:
        raise ValueError(f"fee {fee} + net {net} is not amount {amount}")
    if not f["gateway_ref"] or not f["reference"]:
        raise ValueError("gateway_ref and reference must not be empty")
    occurred_at = datetime.fromisoformat(f["occurred_at"])
    if occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=UTC)  # the document says UTC
    return StatementLine(
        day=date.fromisoformat(f["day"]),
        kind=cast(Literal["charge", "refund", "payout"], f["kind"]),
        gateway_ref=f["gateway_ref"],
        reference=f["reference"],
        amount=Money(amount=amount, currency=currency),
        fee=Money(amount=fee, currency=currency),
        net=Money(amount=net, currency=currency),
        status=f["status"],
        occurred_at=occurred_at,
    )


def _minor(fields: dict[str, str], name: str) -> int:
    value = fields[name]
    if not value.isascii() or not value.isdigit():
        raise ValueError(f"{name} {value!r} is not a whole number of minor units")
    return int(value)
