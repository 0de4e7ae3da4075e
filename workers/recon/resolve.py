"""`payflow recon resolve`: an operator's way out of a reconciliation exception.

- refund: a charge we did not sell for (a double charge): decided through the one fenced path
  (decision.apply, as the statement sweep does), which records it, posts it as late money and
  opens a late refund the refund job sends through the gateway;
- create: record a charge the gateway has that we lack, through the same path (an open
  payment is decided by it; money for a payment already decided is held for review);
- relink: the line belongs to another record of ours (`--to`); the next run matches it so;
- explain: the exception is understood; later runs report it as explained.

Every action is idempotent (the same action on the same case again answers the first
outcome), written to operator_actions (applied or refused) and closes the review case. No
balance is touched here: money moves only through decision.apply and the ledger's postings.
"""

import json
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import uuid4

import asyncpg

from contracts.money import Money
from workers.callback_handling import decision
from workers.recon import action_store as actions
from workers.recon.rules import EXCEPTIONS
from workers.review import cases
from workers.runtime import outbox
from workers.runtime.errors import PermanentError
from workers.runtime.outbox import Message
from workers.sweeper.statement_sweep import PRODUCER, notice_for

ACTIONS = ("refund", "create", "relink", "explain")
LATE_MONEY = ("second_charge", "late_success")


class BadTarget(ValueError):
    """The case named is not a case id nor DAY:REF (a usage error)."""


class Refused(Exception):
    """The action cannot be done on this case; the message says why (logged)."""


@dataclass(frozen=True)
class Resolution:
    case_id: int
    action: str
    outcome: str
    detail: dict[str, Any]
    repeated: bool
    messages: list[Message]


def parse_target(target: str) -> tuple[int | None, date | None, str | None]:
    if target.isdigit():
        return int(target), None, None
    day, sep, ref = target.partition(":")
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        parsed = None
    if not sep or not ref or parsed is None:
        raise BadTarget(f"{target!r} is neither a case id nor DAY:REF (e.g. 2026-11-28:ch_123)")
    return None, parsed, ref


async def resolve(
    pool: asyncpg.Pool, target: str, action: str, reason: str, operator: str, to: str | None
) -> Resolution:
    case_id, day, ref = parse_target(target)
    async with pool.acquire() as conn, conn.transaction():
        row = _one_exception(await actions.find_lines(conn, case_id, day, ref), target)
        case = int(row["case_id"])
        request_key = f"recon:{case}:{action}:{to or ''}"
        prior = await cases.action_by_key(conn, request_key)
        if prior is not None:
            detail = _detail(prior["detail"])
            return Resolution(case, action, prior["outcome"], detail, True, [])
        base = {"day": row["day"].isoformat(), "line": row["line_key"], "to": to}
        refusal: str | None = None
        try:
            if row["case_state"] == "resolved" or row["resolution"] is not None:
                raise Refused(f"case {case} is already resolved ({row['resolution'] or 'closed'})")
            async with conn.transaction():  # a refusal leaves nothing of the attempt behind
                outcome, detail, messages = await _apply(conn, row, action, to, operator)
        except Refused as exc:
            await cases.log_action(
                conn,
                case_id=case,
                operator=operator,
                action=action,
                reason=reason,
                request_key=f"{request_key}:refused:{uuid4().hex}",
                outcome="refused",
                detail=base | {"why": str(exc)},
            )
            refusal = f"case {case}: {exc}"
        else:
            await _close(conn, row, action, reason, operator, request_key, outcome, base | detail)
    if refusal is not None:  # raised once the refusal is logged (committed)
        raise Refused(refusal)
    return Resolution(case, action, outcome, base | detail, False, messages)


async def _close(
    conn: asyncpg.Connection,
    row: asyncpg.Record,
    action: str,
    reason: str,
    operator: str,
    request_key: str,
    outcome: str,
    detail: dict[str, Any],
) -> None:
    case = int(row["case_id"])
    await actions.mark_resolved(conn, row["day"], row["line_key"], action)
    await cases.close_case(conn, case, f"{action}: {reason}", operator)
    await cases.log_action(
        conn,
        case_id=case,
        operator=operator,
        action=action,
        reason=reason,
        request_key=request_key,
        outcome=outcome,
        detail=detail,
    )


def _one_exception(rows: list[asyncpg.Record], target: str) -> asyncpg.Record:
    if not rows:
        raise Refused(f"no reconciliation line {target}; run `payflow recon --date DAY` first")
    found = [r for r in rows if r["category"] in EXCEPTIONS and r["case_id"] is not None]
    if not found:
        raise Refused(f"{target} is {rows[0]['category']}: nothing to resolve")
    if len(found) > 1:
        cases = ", ".join(f"{r['case_id']} ({r['category']})" for r in found)
        raise Refused(f"{target} names several exceptions: {cases}; give the case id")
    return found[0]


async def _apply(
    conn: asyncpg.Connection, row: asyncpg.Record, action: str, to: str | None, operator: str
) -> tuple[str, dict[str, Any], list[Message]]:
    if action == "explain":
        return "explained", {}, []
    statement = _detail(row["statement"]) if row["statement"] is not None else None
    if statement is None:
        raise Refused(f"{row['category']} has no statement line: only explain applies")
    if action == "relink":
        if not to:
            raise Refused("relink needs --to REFERENCE (the record of ours the line is)")
        if not await actions.ours_exists(conn, row["kind"], to):
            raise Refused(f"no {row['kind']} of ours is called {to}")
        await actions.add_link(conn, row["day"], row["kind"], row["gateway_ref"], to, operator)
        return f"linked to {to}", {"linked_to": to}, []
    if row["kind"] != "charge":
        raise Refused(f"{action} applies to charges; this line is a {row['kind']}")
    amount = Money(amount=statement["amount"], currency=statement["currency"])
    notice = notice_for(statement["gateway_ref"], statement["reference"], amount)
    late_action = "refund" if action == "refund" else "review"
    try:
        decided = await decision.apply(conn, None, notice, late_action=late_action)
    except PermanentError as exc:
        raise Refused(
            f"charge {notice.gateway_ref} names no payment of ours ({exc}): explain it"
        ) from None
    refund_id = await actions.late_refund_of(conn, notice.gateway_ref)
    if action == "refund" and decided.verdict not in LATE_MONEY and refund_id is None:
        hint = "use --action create" if decided.verdict == "applied" else "see docs/refunds.md"
        raise Refused(
            f"charge {notice.gateway_ref} is not money we did not sell for "
            f"(verdict {decided.verdict}); {hint}"
        )
    messages = await outbox.store(conn, PRODUCER, None, decided.events)
    detail = {"verdict": decided.verdict, "late_refund": refund_id}
    return f"{action}: {decided.verdict}", detail, messages


def _detail(value: Any) -> dict[str, Any]:
    return dict(json.loads(value) if isinstance(value, str) else value)
