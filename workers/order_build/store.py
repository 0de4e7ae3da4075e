"""Writing built, rejected and duplicate orders; idempotency keys and conflicts."""

from dataclasses import dataclass

import asyncpg

from contracts.events.orders import OrderSubmittedPayload
from workers.order_build.idempotency import Earlier, Judgement, Submission
from workers.order_build.pricing import PricedOrder
from workers.order_build.rules import Rejection
from workers.runtime.errors import TransientError

PRUNE_BATCH = 1000


async def order_bindings(conn: asyncpg.Connection, order_ids: list[str]) -> dict[str, Earlier]:
    """The submissions these order ids were answered for (those that were), in one query."""
    rows = await conn.fetch(
        """SELECT order_id, request_digest, submitted_event_id FROM orders
            WHERE order_id = ANY($1::text[])
           UNION ALL SELECT order_id, request_digest, submitted_event_id FROM order_rejections
                      WHERE order_id = ANY($1::text[])
           UNION ALL SELECT order_id, request_digest, event_id FROM order_duplicates
                      WHERE order_id = ANY($1::text[])""",
        order_ids,
    )
    return {r[0]: Earlier(r[0], r[1], r[2]) for r in rows}


async def claim_keys(
    conn: asyncpg.Connection, subs: list[Submission], retention_h: int
) -> set[str]:
    """`claim_key` for submissions whose keys differ: the keys they now own, in one statement
    (in key order). A key owned by another submission is left to `claim_key`, which names it."""
    subs = sorted(subs, key=lambda s: s.idempotency_key)
    rows = await conn.fetch(
        """INSERT INTO order_idempotency_keys AS k
                  (idempotency_key, order_id, request_digest, event_id)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[])
           ON CONFLICT (idempotency_key) DO UPDATE
              SET order_id = EXCLUDED.order_id, request_digest = EXCLUDED.request_digest,
                  event_id = EXCLUDED.event_id, created_at = now()
              WHERE k.created_at < now() - make_interval(hours => $5)
           RETURNING idempotency_key""",
        [s.idempotency_key for s in subs],
        [s.order_id for s in subs],
        [s.request_digest for s in subs],
        [s.event_id for s in subs],
        retention_h,
    )
    return {r[0] for r in rows}


async def order_binding(conn: asyncpg.Connection, order_id: str) -> Earlier | None:
    """The submission this order id was answered for: built, rejected or a duplicate."""
    return (await order_bindings(conn, [order_id])).get(order_id)


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


# Orders, their sub-orders and their lines in one statement (one round trip, one plan).
_SAVE_ORDERS = """
WITH o AS (
    INSERT INTO orders (order_id, buyer_id, currency, payment_preference, subtotal, discount,
                        total, request_digest, submitted_event_id, state, payment_method)
    SELECT id, buyer, cur, pref, subtotal, discount, total, digest, event, 'built', method
      FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],
                  $7::bigint[], $8::text[], $9::uuid[], $10::text[])
           AS u(id, buyer, cur, pref, subtotal, discount, total, digest, event, method)),
s AS (
    INSERT INTO sub_orders (sub_order_id, order_id, merchant_id, warehouse_id, currency,
                            subtotal, discount, amount, platform_discount)
    SELECT * FROM unnest($11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
                         $16::bigint[], $17::bigint[], $18::bigint[], $19::bigint[]))
INSERT INTO order_items (sub_order_id, sku_id, quantity, unit_price, line_total)
SELECT * FROM unnest($20::text[], $21::text[], $22::int[], $23::bigint[], $24::bigint[])"""


@dataclass(frozen=True)
class Built:
    order: OrderSubmittedPayload
    priced: PricedOrder
    sub: Submission


async def save_orders(conn: asyncpg.Connection, built: list[Built]) -> None:
    if not built:
        return
    parts = [(b.order, p) for b in built for p in b.priced.parts]
    lines = [(p.sub_order_id, li) for _, p in parts for li in p.lines]
    await conn.execute(
        _SAVE_ORDERS,
        [b.order.order_id for b in built],
        [b.order.buyer_id for b in built],
        [b.order.currency for b in built],
        [b.order.payment_preference for b in built],
        [b.priced.subtotal for b in built],
        [b.priced.discount for b in built],
        [b.priced.total for b in built],
        [b.sub.order_digest for b in built],
        [b.sub.event_id for b in built],
        [b.order.payment_method for b in built],
        [p.sub_order_id for _, p in parts],
        [o.order_id for o, _ in parts],
        [p.merchant_id for _, p in parts],
        [p.warehouse_id for _, p in parts],
        [o.currency for o, _ in parts],
        [p.subtotal for _, p in parts],
        [p.discount for _, p in parts],
        [p.amount for _, p in parts],
        [p.platform_discount for _, p in parts],
        [sub_id for sub_id, _ in lines],
        [li.sku_id for _, li in lines],
        [li.quantity for _, li in lines],
        [li.unit_price for _, li in lines],
        [li.total for _, li in lines],
    )


async def save_rejections(
    conn: asyncpg.Connection, rejected: list[tuple[Submission, Rejection]]
) -> None:
    if not rejected:
        return
    await conn.execute(
        """INSERT INTO order_rejections (order_id, request_digest, submitted_event_id,
                                         reason_code, detail)
           SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::text[])""",
        [s.order_id for s, _ in rejected],
        [s.order_digest for s, _ in rejected],
        [s.event_id for s, _ in rejected],
        [r.code for _, r in rejected],
        [r.detail for _, r in rejected],
    )
