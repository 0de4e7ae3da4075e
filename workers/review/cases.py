"""Opening review cases: where a worker gives up, it says so here, in the same transaction as
the state it leaves (so a case exists exactly when the trouble does)."""

import json
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

Kind = Literal[
    "payment_unresolved",  # still unknown after the sweeper's last status query
    "amount_mismatch",  # the gateway's own record differs from what we asked
    "race_loser",  # a decision that lost a Confirm-versus-Cancel race
    "hold_expired",  # the payment succeeded after the wallet hold expired
    "confirm_after_cancel",
    "cancel_after_confirm",
    "late_money_held",  # late money held for review (PAYFLOW_LATE_PAYMENT_ACTION=review)
    "refund_held",  # a gateway refund unresolved or conflicting
    "top_up_unresolved",
    "recon_exception",  # a reconciliation exception
    "dead_letter",  # a dead letter that is not a poison message
    "settlement_check",  # a transaction whose details, legs or accounts do not add up
]


@dataclass(frozen=True)
class Case:
    case_id: int
    kind: str
    subject: str
    order_id: str | None
    payment_id: str | None
    reason: str
    evidence: dict[str, Any]
    state: str
    resolution: str | None
    resolved_by: str | None


async def open_case(
    conn: asyncpg.Connection,
    kind: Kind,
    subject: str,
    reason: str,
    evidence: dict[str, Any] | None = None,
    *,
    order_id: str | None = None,
    payment_id: str | None = None,
) -> int:
    """The case id; the same (kind, subject) again is the same case (its first reason and
    evidence are kept, so a redelivered message opens nothing new)."""
    case_id: int | None = await conn.fetchval(
        """INSERT INTO review_cases (kind, subject, order_id, payment_id, reason, evidence)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb)
           ON CONFLICT (kind, subject) DO NOTHING RETURNING case_id""",
        kind,
        subject,
        order_id,
        payment_id,
        reason,
        json.dumps(evidence or {}, default=str),
    )
    if case_id is None:
        case_id = await conn.fetchval(
            "SELECT case_id FROM review_cases WHERE kind = $1 AND subject = $2", kind, subject
        )
    assert case_id is not None
    return case_id


async def close_case(conn: asyncpg.Connection, case_id: int, resolution: str, who: str) -> bool:
    """Resolve an open case (an operator's action, or a worker that saw the trouble go away);
    False when it was resolved already."""
    status: str = await conn.execute(
        """UPDATE review_cases SET state = 'resolved', resolution = $2, resolved_by = $3,
               resolved_at = now()
            WHERE case_id = $1 AND state = 'open'""",
        case_id,
        resolution,
        who,
    )
    return status == "UPDATE 1"


async def close_subject(
    conn: asyncpg.Connection, kind: Kind, subject: str, resolution: str, who: str
) -> bool:
    """Resolve the open case of (kind, subject), if there is one."""
    case_id: int | None = await conn.fetchval(
        "SELECT case_id FROM review_cases WHERE kind = $1 AND subject = $2 AND state = 'open'",
        kind,
        subject,
    )
    return case_id is not None and await close_case(conn, case_id, resolution, who)


async def action_applied(conn: asyncpg.Connection, request_key: str) -> bool:
    """Whether an operator action with this request key was applied (operator_actions): how a
    stage tells an operator's event from one that only claims to be."""
    found = await conn.fetchval(
        "SELECT 1 FROM operator_actions WHERE request_key = $1 AND outcome = 'applied'",
        request_key,
    )
    return found is not None


async def action_by_key(conn: asyncpg.Connection, request_key: str) -> asyncpg.Record | None:
    """The operator action logged under this request key (a repeated command finds it)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM operator_actions WHERE request_key = $1", request_key
    )
    return row


async def log_action(
    conn: asyncpg.Connection,
    *,
    case_id: int | None,
    operator: str,
    action: str,
    reason: str,
    request_key: str,
    outcome: str,
    detail: dict[str, Any],
) -> None:
    """One line of the operator action log: who, what, why, and what came of it (applied or
    refused); the same request key again logs nothing new."""
    await conn.execute(
        """INSERT INTO operator_actions (case_id, operator, action, reason, request_key, outcome,
                                         detail)
           VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
           ON CONFLICT (request_key) DO NOTHING""",
        case_id,
        operator,
        action,
        reason,
        request_key,
        outcome,
        json.dumps(detail, default=str),
    )
