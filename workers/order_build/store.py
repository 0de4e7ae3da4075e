"""Writing built, rejected and duplicate orders; idempotency keys and conflicts."""

import asyncpg

from contracts.events.orders import OrderSubmittedPayload
from workers.order_build.idempotency import Earlier, Judgement, Submission
from workers.order_build.pricing import PricedOrder
from workers.runtime.errors import TransientError

PRUNE_BATCH = 1000


async def order_binding(conn: asyncpg.Connection, order_id: str) -> Earlier | None:
    """The submission this order id was answered for: built, rejected or a duplicate."""
    row = await conn.fetchrow(
        """SELECT request_digest, submitted_event_id FROM orders WHERE order_id = $1
           UNION ALL SELECT request_digest, submitted_event_id FROM order_rejections
                     WHERE order_id = $1
           UNION ALL SELECT request_digest, event_id FROM order_duplicates WHERE order_id = $1""",
        order_id,
    )
    return None if row is None else Earlier(order_id, row[0], row[1])


async def claim_key(conn: asyncpg.Connection, sub: Submission, retention_h: int) -> Earlier | None:
    """Insert, then act: None when this submission now owns its key (a new key, or one
    older than the retention, which counts as new); else the owner. The unique key makes
    a concurrent claim of the same key wait for this transaction and then see the owner.
    A key that is not ours stays locked until we commit, so it cannot be pruned meanwhile."""
    claimed = await conn.fetchval(
        """INSERT INTO order_idempotency_keys AS k
                  (idempotency_key, order_id, request_digest, event_id)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (idempotency_key) DO UPDATE
              SET order_id = EXCLUDED.order_id, request_digest = EXCLUDED.request_digest,
                  event_id = EXCLUDED.event_id, created_at = now()
              WHERE k.created_at < now() - make_interval(hours => $5)
           RETURNING true""",
        sub.idempotency_key,
        sub.order_id,
        sub.request_digest,
        sub.event_id,
        retention_h,
    )
    if claimed:
        return None
    row = await conn.fetchrow(
        """SELECT order_id, request_digest, event_id FROM order_idempotency_keys
           WHERE idempotency_key = $1""",
        sub.idempotency_key,
    )
    if row is None:  # cannot happen while we hold its lock; retry the batch if it does
        raise TransientError(f"idempotency key {sub.idempotency_key!r} vanished")
    return Earlier(row["order_id"], row["request_digest"], row["event_id"])


async def prune_keys(conn: asyncpg.Connection, retention_h: int) -> int:
    """Forget up to PRUNE_BATCH keys older than the retention; rows a submission has just
    locked are skipped, so pruning never waits and is never waited for long."""
    status = await conn.execute(
        """DELETE FROM order_idempotency_keys WHERE ctid IN (
               SELECT ctid FROM order_idempotency_keys
               WHERE created_at < now() - make_interval(hours => $1)
               LIMIT $2 FOR UPDATE SKIP LOCKED)""",
        retention_h,
        PRUNE_BATCH,
    )
    return int(status.split()[-1])


async def save_duplicate(conn: asyncpg.Connection, sub: Submission, original_order_id: str) -> None:
    await conn.execute(
        """INSERT INTO order_duplicates (order_id, original_order_id, idempotency_key,
                                         request_digest, event_id)
           VALUES ($1, $2, $3, $4, $5)""",
        sub.order_id,
        original_order_id,
        sub.idempotency_key,
        sub.order_digest,
        sub.event_id,
    )


async def save_conflict(conn: asyncpg.Connection, sub: Submission, judged: Judgement) -> None:
    await conn.execute(
        """INSERT INTO order_submission_conflicts (reason_code, idempotency_key, order_id,
               event_id, request_digest, existing_order_id, existing_event_id, existing_digest)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        judged.verdict.value,
        sub.idempotency_key,
        sub.order_id,
        sub.event_id,
        judged.digest,
        judged.earlier.order_id,
        judged.earlier.event_id,
        judged.earlier.digest,
    )


# The order, its sub-orders and their lines in one statement (one round trip, one plan).
_SAVE_ORDER = """
WITH o AS (
    INSERT INTO orders (order_id, buyer_id, currency, payment_preference, subtotal, discount,
                        total, request_digest, submitted_event_id, state, payment_method)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'built', $10)),
s AS (
    INSERT INTO sub_orders (sub_order_id, order_id, merchant_id, warehouse_id, currency,
                            subtotal, discount, amount, platform_discount)
    SELECT u.id, $1, u.merchant, u.warehouse, $3, u.subtotal, u.discount, u.amount, u.platform
      FROM unnest($11::text[], $12::text[], $13::text[], $14::bigint[], $15::bigint[],
                  $16::bigint[], $17::bigint[])
           AS u(id, merchant, warehouse, subtotal, discount, amount, platform))
INSERT INTO order_items (sub_order_id, sku_id, quantity, unit_price, line_total)
SELECT * FROM unnest($18::text[], $19::text[], $20::int[], $21::bigint[], $22::bigint[])"""


async def save_order(
    conn: asyncpg.Connection, order: OrderSubmittedPayload, priced: PricedOrder, sub: Submission
) -> None:
    parts, lines = priced.parts, [(p.sub_order_id, li) for p in priced.parts for li in p.lines]
    await conn.execute(
        _SAVE_ORDER,
        order.order_id,
        order.buyer_id,
        order.currency,
        order.payment_preference,
        priced.subtotal,
        priced.discount,
        priced.total,
        sub.order_digest,
        sub.event_id,
        order.payment_method,
        [p.sub_order_id for p in parts],
        [p.merchant_id for p in parts],
        [p.warehouse_id for p in parts],
        [p.subtotal for p in parts],
        [p.discount for p in parts],
        [p.amount for p in parts],
        [p.platform_discount for p in parts],
        [sub_id for sub_id, _ in lines],
        [li.sku_id for _, li in lines],
        [li.quantity for _, li in lines],
        [li.unit_price for _, li in lines],
        [li.total for _, li in lines],
    )


async def save_rejection(conn: asyncpg.Connection, sub: Submission, code: str, detail: str) -> None:
    await conn.execute(
        """INSERT INTO order_rejections (order_id, request_digest, submitted_event_id,
                                         reason_code, detail)
           VALUES ($1, $2, $3, $4, $5)""",
        sub.order_id,
        sub.order_digest,
        sub.event_id,
        code,
        detail,
    )
