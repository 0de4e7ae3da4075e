"""How far a demo run has got, per stage, read from Postgres."""

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from contracts.topics import FUNDS_FROZEN, ORDERS_BUILT, PAYMENTS_DECIDED

FINAL = ("settled", "cancelled", "rejected", "manual_review")


@dataclass(frozen=True)
class StageCount:
    stage: str
    done: int
    total: int


async def stage_counts(
    conn: asyncpg.Connection, since: datetime, orders: int, order_prefix: str
) -> list[StageCount]:
    # The run's payments are reached from its orders (by id prefix, through indexes): a
    # count by creation time read every payment ever made, each time the progress was drawn.
    row = await conn.fetchrow(
        """SELECT
             (SELECT count(*) FROM inbox WHERE consumer = 'order_build' AND processed_at >= $1) ob,
             (SELECT count(*) FROM outbox WHERE topic = $2 AND created_at >= $1) built,
             (SELECT count(*) FROM inbox WHERE consumer = 'fund_freeze' AND processed_at >= $1) ff,
             (SELECT count(*) FROM outbox WHERE topic = $3 AND created_at >= $1) frozen,
             (SELECT count(*) FROM inbox WHERE consumer = 'gateway_request'
                AND processed_at >= $1) gr,
             p.requested, p.called_back,
             (SELECT count(*) FROM outbox WHERE topic = $4 AND created_at >= $1) decided,
             (SELECT count(*) FROM inbox WHERE consumer = 'settlement' AND processed_at >= $1) st
           FROM (SELECT count(*) AS requested,
                        count(*) FILTER (WHERE r.status NOT IN ('requesting', 'pending'))
                          AS called_back
                   FROM orders o JOIN transactions t USING (order_id)
                   JOIN payment_requests r ON r.transaction_id = t.transaction_id
                  WHERE o.order_id LIKE $5 || '%') p
        """,
        since,
        ORDERS_BUILT.name,
        FUNDS_FROZEN.name,
        PAYMENTS_DECIDED.name,
        order_prefix,
    )
    assert row is not None
    return [
        StageCount("order build", row["ob"], orders),
        StageCount("fund freeze", row["ff"], row["built"]),
        StageCount("gateway request", row["gr"], row["frozen"]),
        StageCount("callback handling", row["called_back"], row["requested"]),
        StageCount("settlement", row["st"], row["decided"]),
    ]


async def outcomes(conn: asyncpg.Connection, order_prefix: str) -> dict[str, int]:
    rows = await conn.fetch(
        """SELECT state, count(*) n FROM orders WHERE order_id LIKE $1 || '%' GROUP BY state
           UNION ALL
           SELECT 'rejected', count(*) FROM order_rejections WHERE order_id LIKE $1 || '%'""",
        order_prefix,
    )
    counts = dict.fromkeys(FINAL, 0) | {"in_flight": 0}
    for r in rows:
        key = r["state"] if r["state"] in FINAL else "in_flight"
        counts[key] += r["n"]
    return counts
