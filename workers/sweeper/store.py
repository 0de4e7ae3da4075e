"""What the sweeper reads and writes: due payments, its task claims, fenced status changes."""

import json
from dataclasses import dataclass

import asyncpg

from contracts.events.payments import PaymentDecisionPayload
from contracts.money import Money

OPEN = ("requesting", "pending", "unknown")
OPEN_ORDER = ("funds_frozen", "payment_requested")


@dataclass(frozen=True)
class DuePayment:
    payment_id: str
    order_id: str
    adapter: str
    status: str
    checks: int
    gateway_ref: str | None
    age_s: float


async def due_payments(conn: asyncpg.Connection, grace_s: float, limit: int) -> list[DuePayment]:
    """Order payments whose next check has come: unknown ones, open ones past the callback
    grace, expired ones still to void. A payment whose answer was never recorded (the stage
    died during the call) is due once the grace has passed."""
    rows = await conn.fetch(
        """SELECT payment_id, order_id, adapter, status, checks, gateway_ref,
                  extract(epoch FROM now() - created_at)::float8 AS age_s
           FROM payment_requests
           WHERE order_id IS NOT NULL
             AND ((status = ANY($1::text[])
                   AND coalesce(next_check_at, created_at + make_interval(secs => $2)) <= now()
                   AND (status = 'unknown' OR created_at < now() - make_interval(secs => $2)))
                  OR (status = 'expired' AND next_check_at <= now()))
           ORDER BY coalesce(next_check_at, created_at) LIMIT $3""",
        list(OPEN),
        grace_s,
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
           FROM payment_requests WHERE payment_id = $1 FOR UPDATE""",
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
        """SELECT o.order_id FROM orders o
           WHERE o.state = ANY($1::text[])
             AND (coalesce(o.pay_by, o.created_at + make_interval(secs => $2)) <= now()
                  OR EXISTS (SELECT 1 FROM fund_holds h WHERE h.order_id = o.order_id
                             AND h.state = 'held' AND h.expires_at <= now()))
           ORDER BY o.created_at LIMIT $3""",
        list(OPEN_ORDER),
        window_s,
        limit,
    )
    return [r["order_id"] for r in rows]


async def lock_open_order(conn: asyncpg.Connection, order_id: str) -> bool:
    state = await conn.fetchval("SELECT state FROM orders WHERE order_id = $1 FOR UPDATE", order_id)
    return state in OPEN_ORDER


async def latest_payment(conn: asyncpg.Connection, order_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        """SELECT payment_id, status, fence, checks, gateway_ref, adapter FROM payment_requests
           WHERE order_id = $1 ORDER BY attempt DESC LIMIT 1 FOR UPDATE""",
        order_id,
    )
    return row


async def decision_payload(
    conn: asyncpg.Connection, order_id: str, reason_code: str, detail: str
) -> PaymentDecisionPayload:
    """The order's decision as settlement reads it, amounts from our own records."""
    t = await conn.fetchrow(
        """SELECT transaction_id, buyer_id, currency, total, wallet_part, gateway_part
           FROM transactions WHERE order_id = $1""",
        order_id,
    )
    if t is None:
        raise LookupError(f"order {order_id} has no transaction")

    def m(amount: int) -> Money:
        return Money(amount=amount, currency=t["currency"])

    return PaymentDecisionPayload(
        order_id=order_id,
        transaction_id=t["transaction_id"],
        buyer_id=t["buyer_id"],
        total=m(t["total"]),
        wallet_part=m(t["wallet_part"]),
        gateway_part=m(t["gateway_part"]),
        reason_code=reason_code,
        detail=detail,
    )


async def is_open(conn: asyncpg.Connection, payment_id: str) -> bool:
    found = await conn.fetchval(
        "SELECT status = ANY($2::text[]) FROM payment_requests WHERE payment_id = $1",
        payment_id,
        list(OPEN),
    )
    return bool(found)


async def unpublished(
    conn: asyncpg.Connection, producer: str, older_than_s: float, limit: int
) -> list[asyncpg.Record]:
    """This producer's outbox rows not yet published (a sweeper died, or Kafka failed,
    between commit and publish)."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT outbox_id, topic, message_key, message_value FROM outbox
           WHERE producer = $1 AND published_at IS NULL
             AND created_at < now() - make_interval(secs => $2)
           ORDER BY outbox_id LIMIT $3""",
        producer,
        older_than_s,
        limit,
    )
    return rows
