"""The records of late money: charges we know of, late refunds, and their ledger postings.

Money that arrives for nothing we sold is owed back to the buyer: the posting moves it from
the gateway's clearing account to the platform's `late_payments_payable` liability; the
refund's success moves it back out. One posting each, keyed by the refund id.
"""

import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from workers.ledger import accounts, postings
from workers.ledger.postings import Leg

PAYABLE = "late_payments_payable"


@dataclass(frozen=True)
class LateRefund:
    refund_id: str
    kind: str
    payment_id: str
    gateway_ref: str
    adapter: str
    amount: int
    currency: str
    reason: str
    status: str
    attempts: int
    order_id: str | None
    wallet_operation_id: str | None
    order_refund_id: str | None  # kind 'order_refund': the refund of the order it belongs to
    age_s: float  # since it was opened


def late_refund_id(gateway_ref: str) -> str:
    return f"late:{gateway_ref}"


async def charge_seen(conn: asyncpg.Connection, gateway_ref: str) -> bool:
    """Whether this charge was recorded as a success before (a repeated answer)."""
    return gateway_ref in await charges_seen(conn, [gateway_ref])


async def charges_seen(conn: asyncpg.Connection, gateway_refs: list[str]) -> set[str]:
    """The charges (of these) recorded as a success before."""
    rows = await conn.fetch(
        """SELECT gateway_ref FROM gateway_charges
            WHERE gateway_ref = ANY($1::text[]) AND status = 'succeeded'""",
        gateway_refs,
    )
    return {r["gateway_ref"] for r in rows}


@dataclass(frozen=True)
class Charge:
    payment_id: str
    gateway_ref: str
    amount: int
    currency: str
    status: str
    source: str


async def record_charge(
    conn: asyncpg.Connection,
    *,
    payment_id: str,
    gateway_ref: str,
    amount: int,
    currency: str,
    status: str,
    source: str,
) -> None:
    """Every charge learned, first success included; a success is never overwritten."""
    await record_charges(conn, [Charge(payment_id, gateway_ref, amount, currency, status, source)])


async def record_charges(conn: asyncpg.Connection, charges: list[Charge]) -> None:
    """`record_charge` for many charges (each gateway ref once) in one statement."""
    await conn.execute(
        """INSERT INTO gateway_charges (gateway_ref, payment_id, amount, currency, status,
                                        source)
           SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
                                $6::text[]) ORDER BY 1
           ON CONFLICT (gateway_ref) DO UPDATE SET status = 'succeeded', updated_at = now()
           WHERE excluded.status = 'succeeded' AND gateway_charges.status <> 'succeeded'""",
        [c.gateway_ref for c in charges],
        [c.payment_id for c in charges],
        [c.amount for c in charges],
        [c.currency for c in charges],
        [c.status for c in charges],
        [c.source for c in charges],
    )


async def open_late_refund(
    conn: asyncpg.Connection,
    *,
    payment_id: str,
    gateway_ref: str,
    adapter: str,
    amount: int,
    currency: str,
    reason: str,
    status: str,
    evidence: dict[str, Any],
) -> bool:
    """Create the late refund of one charge (once per gateway_ref); False if it existed."""
    created = await conn.fetchval(
        """INSERT INTO gateway_refunds (refund_id, kind, payment_id, gateway_ref, adapter,
                                        amount, currency, reason, status, evidence)
           VALUES ($1, 'late_payment', $2, $3, $4, $5, $6, $7, $8, jsonb_build_array($9::jsonb))
           ON CONFLICT DO NOTHING RETURNING 1""",
        late_refund_id(gateway_ref),
        payment_id,
        gateway_ref,
        adapter,
        amount,
        currency,
        reason,
        status,
        json.dumps(evidence),
    )
    return created is not None


async def post_money_arrived(
    conn: asyncpg.Connection, refund_id: str, order_id: str | None, amount: int, currency: str
) -> None:
    await _post(conn, "late_payment", refund_id, order_id, amount, currency, returned=False)


async def post_money_returned(
    conn: asyncpg.Connection, refund_id: str, order_id: str | None, amount: int, currency: str
) -> None:
    await _post(conn, "late_payment_refund", refund_id, order_id, amount, currency, returned=True)


async def _post(
    conn: asyncpg.Connection,
    kind: str,
    refund_id: str,
    order_id: str | None,
    amount: int,
    currency: str,
    *,
    returned: bool,
) -> None:
    """Into the liability from the gateway's clearing account, or (returned) back out."""
    clearing = await accounts.ensure(conn, accounts.external("gateway_clearing", currency))
    payable = await accounts.ensure(conn, accounts.platform(PAYABLE, currency))
    leg = (
        Leg(payable, clearing, amount, "late_payment:refunded")
        if returned
        else Leg(clearing, payable, amount, "late_payment:arrived")
    )
    await postings.post(
        conn,
        kind=kind,
        order_id=order_id,
        idempotency_key=f"{kind}:{refund_id}",
        currency=currency,
        legs=[leg],
    )


_SELECT = """SELECT g.refund_id, g.kind, g.payment_id, g.gateway_ref, g.adapter, g.amount,
                    g.currency, g.reason, g.status, g.attempts, r.order_id,
                    r.wallet_operation_id, g.order_refund_id,
                    extract(epoch FROM now() - g.created_at)::float8 AS age_s
             FROM gateway_refunds g JOIN payment_requests r USING (payment_id)"""


async def lock_refund(conn: asyncpg.Connection, refund_id: str) -> LateRefund | None:
    row = await conn.fetchrow(_SELECT + " WHERE g.refund_id = $1 FOR UPDATE OF g", refund_id)
    return LateRefund(**dict(row)) if row else None


async def claim_due(
    conn: asyncpg.Connection, statuses: tuple[str, ...], limit: int
) -> list[LateRefund]:
    """Refunds in `statuses` whose next try is due, locked; a row another sweeper holds is
    skipped, so two replicas never send the same refund at once."""
    rows = await conn.fetch(
        _SELECT
        + """ WHERE g.status = ANY($1::text[]) AND g.next_try_at <= now()
                      ORDER BY g.next_try_at LIMIT $2 FOR UPDATE OF g SKIP LOCKED""",
        list(statuses),
        limit,
    )
    return [LateRefund(**dict(row)) for row in rows]


async def set_refund(
    conn: asyncpg.Connection,
    refund_id: str,
    status: str,
    evidence: dict[str, Any],
    *,
    next_try_in_s: float = 0.0,
    refund_ref: str | None = None,
    tried: bool = False,
) -> None:
    """Move a refund and append what we saw to its evidence."""
    await conn.execute(
        """UPDATE gateway_refunds SET status = $2, evidence = evidence || jsonb_build_array($3::jsonb),
               next_try_at = now() + make_interval(secs => $4),
               refund_ref = coalesce($5, refund_ref),
               attempts = attempts + CASE WHEN $6 THEN 1 ELSE 0 END, updated_at = now()
           WHERE refund_id = $1""",
        refund_id,
        status,
        json.dumps(evidence),
        next_try_in_s,
        refund_ref,
        tried,
    )
