"""One reconciliation run of a UTC day: the gateway's statement beside our records, every line
classified (rules.py), stored, each exception opened as a review case, and the fees and
payouts of matched lines booked (booking.py). All in one transaction per run, serialised per
day, so running a day twice gives the same result and books nothing twice."""

from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg

from infra.settings import Settings
from workers.gateway.http import gateway_session
from workers.gateway.port import StatementLine
from workers.gateway.registry import Gateways
from workers.late_payments import statement_check
from workers.recon import booking, store
from workers.recon.rules import EXCEPTIONS, Line, Outcome, classify
from workers.review import cases
from workers.review.cases import Kind, open_case

CASE_KIND: Kind = "recon_exception"
RECON = "payflow recon"  # who closes a case whose line reconciles on a later run


class BadStatement(ValueError):
    """The statement given cannot be reconciled as the day asked (says why)."""


async def fetch_statement(settings: Settings, day: date) -> list[StatementLine]:
    """The day's statement through the gateway port, from every routed adapter."""
    async with gateway_session() as http:
        gateways = Gateways(settings, http)
        adapters = [gateways.adapter(name) for name in sorted(set(settings.routes.values()))]
        return await statement_check.statement(adapters, day)


def plain(line: StatementLine) -> Line:
    return Line(
        kind=line.kind,
        gateway_ref=line.gateway_ref,
        reference=line.reference,
        amount=line.amount.amount,
        currency=line.amount.currency,
        fee=line.fee.amount,
        status=line.status,
        occurred_at=line.occurred_at.isoformat(),
    )


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), UTC)
    return start, start + timedelta(days=1)


async def reconcile(
    pool: asyncpg.Pool,
    day: date,
    statement: list[StatementLine],
    *,
    source: str,
    grace_s: float,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The run's report (docs/reconciliation.md); stored with its lines."""
    other_days = sorted({x.day.isoformat() for x in statement if x.day != day})
    if other_days:
        raise BadStatement(f"the statement has lines of {', '.join(other_days)}, not only {day}")
    lines = [plain(x) for x in statement]
    start, end = day_bounds(day)
    cutoff = min(end, now or datetime.now(UTC))
    async with pool.acquire() as conn, conn.transaction():
        # One run of a day at a time: two would open the same cases and book the same lines.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"recon:{day}")
        links = await store.links(conn, day)
        refs = [x.gateway_ref for x in lines]
        references = [x.reference for x in lines] + list(links.values())
        ours = await store.our_records(conn, start, end, refs, references)
        elsewhere = await store.matched_elsewhere(conn, day, [o.key for o in ours])
        named = set(refs) | set(references)
        ours = [o for o in ours if o.key not in elsewhere or {o.gateway_ref, o.reference} & named]
        outcomes = classify(lines, ours, cutoff, grace_s, links)
        previous = await store.previous(conn, day)
        run_id = await store.start_run(conn, day, source)
        report = await _store_outcomes(conn, day, run_id, outcomes, previous)
        gone = await store.drop_stale(conn, day, [o.key for o in outcomes])
        await store.close_unreferenced(conn, gone, "reconciled: no longer on its own", RECON)
        exceptions = sum(len(v) for v in report["exceptions"].values())
        await store.finish_run(conn, run_id, report, exceptions)
    return report | {"run_id": run_id}


async def _store_outcomes(
    conn: asyncpg.Connection,
    day: date,
    run_id: int,
    outcomes: list[Outcome],
    previous: dict[str, asyncpg.Record],
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "date": day.isoformat(),
        "matched": 0,
        "pending": 0,
        "explained": 0,
        "exceptions": {},
        "fees": {},
        "ok": True,
    }
    for o in sorted(outcomes, key=lambda x: x.key):
        before = previous.get(o.key)
        row = record(o)
        explained = (
            before is not None
            and before["resolution"] == "explain"
            and before["resolved_category"] == o.category
        )
        if o.category in EXCEPTIONS:
            row["case_id"] = await _open(conn, day, o, row)
            if explained:
                report["explained"] += 1
            else:
                report["exceptions"].setdefault(o.category, []).append(row)
        else:
            report[o.category] += 1
            if before is not None and before["case_id"] is not None:
                await cases.close_case(
                    conn, before["case_id"], f"reconciled: now {o.category}", RECON
                )
        if o.category == "matched" and o.line is not None:
            await booking.book(conn, day, o.key, o.line, o.ours.order_id if o.ours else None)
            if o.line.kind == "charge":
                fees = report["fees"]
                fees[o.line.currency] = fees.get(o.line.currency, 0) + o.line.fee
        await store.save_line(conn, day, run_id, row)
    report["ok"] = not report["exceptions"]
    return report


def record(o: Outcome) -> dict[str, Any]:
    """The outcome as stored and reported: both sides, as each says it."""
    ours = None
    if o.ours is not None:
        ours = asdict(o.ours) | {"at": o.ours.at.isoformat()}
    kind = o.line.kind if o.line is not None else o.ours.kind if o.ours is not None else ""
    reference = o.line.reference if o.line is not None else o.ours.reference if o.ours else ""
    return {
        "key": o.key,
        "category": o.category,
        "kind": kind,
        "gateway_ref": o.line.gateway_ref
        if o.line is not None
        else (o.ours and o.ours.gateway_ref),
        "reference": reference,
        "our_key": o.ours.key if o.ours is not None else None,
        "statement": asdict(o.line) if o.line is not None else None,
        "ours": ours,
        "detail": o.detail,
        "case_id": None,
    }


async def _open(conn: asyncpg.Connection, day: date, o: Outcome, row: dict[str, Any]) -> int:
    payment_id = None
    if row["kind"] == "charge":
        payment_id = o.ours.reference if o.ours is not None else row["reference"]
    return await open_case(
        conn,
        CASE_KIND,
        f"recon:{day.isoformat()}:{o.category}:{o.ref}",
        f"reconciliation {day}: {o.category}" + (f" ({o.detail})" if o.detail else ""),
        {k: row[k] for k in ("key", "category", "statement", "ours", "detail")},
        order_id=o.ours.order_id if o.ours is not None else None,
        payment_id=payment_id,
    )
