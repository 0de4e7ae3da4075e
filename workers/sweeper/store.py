"""What the sweeper reads and writes: due payments, its task claims, fenced status changes."""

import json
from dataclasses import dataclass

import asyncpg

from workers.gateway.port import ChargeCreated

OPEN = ("requesting", "pending", "unknown")
OPEN_ORDER = ("funds_frozen", "payment_requested")
# The same as SQL literals: a partial index serves a query only when Postgres can see that the
# query's states are among its own, which it cannot for a parameter.
_OPEN_SQL = ", ".join(f"'{status}'" for status in OPEN)
_OPEN_ORDER_SQL = ", ".join(f"'{state}'" for state in OPEN_ORDER)


@dataclass(frozen=True)
class DuePayment:
    payment_id: str
    order_id: str | None  # None for a wallet top-up
    wallet_operation_id: str | None
    adapter: str
    status: str
    checks: int
    gateway_ref: str | None
    age_s: float
    # What was asked for, to send the same request again (workers/payments/rules.py).
    amount: int
    currency: str
    idempotency_key: str
    window_left_s: float  # until the payment window closes (negative: closed)

    @property
    def reference(self) -> str:
        """The order, or the wallet operation, the charge pays: the gateway's order id."""
        ref = self.order_id or self.wallet_operation_id
        assert ref is not None  # a payment pays exactly one (payment_requests_pays_one_thing)
        return ref


async def due_payments(
    conn: asyncpg.Connection, grace_s: float, window_s: float, limit: int
) -> list[DuePayment]:
    """Payments (orders' and top-ups') whose next check has come: unknown ones, open ones
    past the callback grace, expired ones still to void. A payment whose answer was never
    recorded (the stage died during the call) is due once the grace has passed. The window
    is the order's (`pay_by`, else built + `window_s`); a top-up's runs from its request.
    The first two conditions are payment_requests_check_due's (migration 0026): the payments
    still open or to void are read, never the history."""
    rows = await conn.fetch(
        f"""SELECT r.payment_id, r.order_id, r.wallet_operation_id, r.adapter, r.status,
                  r.checks, r.gateway_ref, r.amount, r.currency, r.idempotency_key,
                  extract(epoch FROM now() - r.created_at)::float8 AS age_s,
                  extract(epoch FROM coalesce(o.pay_by, o.created_at + make_interval(secs => $2),
                                              r.created_at + make_interval(secs => $2))
                                     - now())::float8 AS window_left_s
           FROM payment_requests r LEFT JOIN orders o ON o.order_id = r.order_id
           WHERE (r.status IN ({_OPEN_SQL})
                  OR (r.status = 'expired' AND r.next_check_at IS NOT NULL))
             AND coalesce(r.next_check_at, r.created_at) <= now()
             AND ((r.status IN ({_OPEN_SQL})
                   AND coalesce(r.next_check_at, r.created_at + make_interval(secs => $1)) <= now()
                   AND (r.status = 'unknown' OR r.created_at < now() - make_interval(secs => $1)))
                  OR (r.status = 'expired' AND r.next_check_at <= now()))
           ORDER BY coalesce(r.next_check_at, r.created_at) LIMIT $3""",
        grace_s,
        window_s,
        limit,
    )
    return [DuePayment(**dict(r)) for r in rows]


async def claim(
    conn: asyncpg.Connection,
    task_key: str,
    stale_s: float,
    payment_id: str | None = None,
    order_id: str | None = None,
) -> bool:
    """Claim one unit of work; False when another replica has it (or did it). A claim left
    unfinished for `stale_s` (its sweeper died) may be taken over."""
    got = await conn.fetchval(
        """INSERT INTO sweeper_tasks (task_key, payment_id, order_id) VALUES ($1, $2, $3)
           ON CONFLICT (task_key) DO UPDATE SET claimed_at = now()
           WHERE sweeper_tasks.finished_at IS NULL
             AND sweeper_tasks.claimed_at < now() - make_interval(secs => $4)
           RETURNING 1""",
        task_key,
        payment_id,
        order_id,
        stale_s,
    )
    return got is not None


async def finish(conn: asyncpg.Connection, task_key: str, result: str) -> None:
    await conn.execute(
        "UPDATE sweeper_tasks SET result = $2, finished_at = now() WHERE task_key = $1",
        task_key,
        result,
    )


async def lock_payment(conn: asyncpg.Connection, payment_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        """SELECT payment_id, order_id, status, checks, fence, gateway_ref, adapter
           FROM payment_requests WHERE payment_id = $1 FOR NO KEY UPDATE""",
        payment_id,
    )
    return row


async def note_check(
    conn: asyncpg.Connection,
    payment_id: str,
    checks: int,
    next_in_s: float | None,
    evidence: dict[str, object] | None,
) -> None:
    """Count the check and schedule the next (None: no more); evidence kept unless None."""
    await conn.execute(
        """UPDATE payment_requests SET checks = $2, evidence = evidence || $4::jsonb,
               next_check_at = CASE WHEN $3::float8 IS NULL THEN NULL
                                    ELSE now() + make_interval(secs => $3::float8) END,
               updated_at = now()
           WHERE payment_id = $1""",
        payment_id,
        checks,
        next_in_s,
        json.dumps([evidence] if evidence else []),
    )


async def record_resent(conn: asyncpg.Connection, payment_id: str, created: ChargeCreated) -> None:
    """The re-sent request was accepted: the charge exists now (pending its callback); a
    decision made meanwhile stays."""
    await conn.execute(
        """UPDATE payment_requests SET gateway_ref = coalesce(gateway_ref, $2),
               pay_url = coalesce(pay_url, $3), qr_payload = coalesce(qr_payload, $4),
               status = CASE WHEN status IN ('requesting', 'unknown') THEN 'pending'
                             ELSE status END,
               updated_at = now()
           WHERE payment_id = $1""",
        payment_id,
        created.gateway_ref,
        created.pay_url,
        created.qr_payload,
    )


async def move(
    conn: asyncpg.Connection,
    payment_id: str,
    fence: int,
    status: str,
    from_states: tuple[str, ...],
    evidence: dict[str, object],
) -> bool:
    """Fenced like the decision path: leaves only the states given, only if nobody decided
    the payment since we read it (never from a decided state)."""
    result = await conn.execute(
        """UPDATE payment_requests SET status = $3, fence = fence + 1,
               evidence = evidence || $5::jsonb, updated_at = now()
           WHERE payment_id = $1 AND fence = $2 AND status = ANY($4::text[])""",
        payment_id,
        fence,
        status,
        list(from_states),
        json.dumps([evidence]),
    )
    return bool(result == "UPDATE 1")


async def expired_orders(conn: asyncpg.Connection, window_s: float, limit: int) -> list[str]:
    """Open orders past their payment window, or whose wallet hold has expired."""
    rows = await conn.fetch(
        f"""SELECT o.order_id FROM orders o
           WHERE o.state IN ({_OPEN_ORDER_SQL})
             AND (coalesce(o.pay_by, o.created_at + make_interval(secs => $1)) <= now()
                  OR EXISTS (SELECT 1 FROM fund_holds h WHERE h.order_id = o.order_id
                             AND h.state = 'held' AND h.expires_at <= now()))
           ORDER BY o.created_at LIMIT $2""",
        window_s,
        limit,
    )
    return [r["order_id"] for r in rows]


async def lock_open_order(conn: asyncpg.Connection, order_id: str) -> bool:
    state = await conn.fetchval(
        "SELECT state FROM orders WHERE order_id = $1 FOR NO KEY UPDATE", order_id
    )
    return state in OPEN_ORDER


async def latest_payment(conn: asyncpg.Connection, order_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        # Through the order's transaction: payment_requests is not indexed by order (the hot
        # path would pay for it), and this runs for every order whose window closes.
        """SELECT payment_id, status, fence, checks, gateway_ref, adapter FROM payment_requests
           WHERE transaction_id = (SELECT transaction_id FROM transactions WHERE order_id = $1)
             AND order_id = $1
           ORDER BY attempt DESC LIMIT 1 FOR NO KEY UPDATE""",
        order_id,
    )
    return row


async def is_open(conn: asyncpg.Connection, payment_id: str) -> bool:
    found = await conn.fetchval(
        "SELECT status = ANY($2::text[]) FROM payment_requests WHERE payment_id = $1",
        payment_id,
        list(OPEN),
    )
    return bool(found)


async def unseen_charges(
    conn: asyncpg.Connection, refs: list[str], references: list[str]
) -> set[str]:
    """Of the gateway's charges (`refs`, each naming our payment in `references`), those of
    one of our payments that we have not recorded as succeeded."""
    rows = await conn.fetch(
        """SELECT s.ref FROM unnest($1::text[], $2::text[]) AS s(ref, reference)
           JOIN payment_requests r ON r.payment_id = s.reference
           WHERE NOT EXISTS (SELECT 1 FROM gateway_charges g
                             WHERE g.gateway_ref = s.ref AND g.status = 'succeeded')""",
        refs,
        references,
    )
    return {r["ref"] for r in rows}
