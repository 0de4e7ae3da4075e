"""The bench's SQL: seed data, progress, final times and server counters."""

from datetime import datetime

import asyncpg

from workers.bench import orders
from workers.ops import demo_orders, seed

FINAL_STATES = ("settled", "cancelled", "manual_review")


def history_id(run_id: str) -> str:
    """The id prefix of a run's history orders: not a prefix of the run's own order ids, so
    every count and time of the run's orders leaves the history out."""
    return f"hist-{run_id}"


async def seed_run(conn: asyncpg.Connection, run_id: str, count: int, history: int = 0) -> None:
    """Catalogue, wallets and coupon grants for `count` orders and `history` orders before
    them; stock that cannot run out."""
    async with conn.transaction():
        await seed.seed_catalogue(conn)
        await conn.execute("UPDATE stock SET available = $1", orders.STOCK)
        for n in range(1, orders.BUYERS + 1):
            buyer = f"bench-buyer-{n:04d}"
            await seed.top_up(conn, buyer, orders.balance_of(n), f"bench:{run_id}:{n}")
        for prefix, n in ((run_id, count), (history_id(run_id), history)):
            for i in range(n):
                if demo_orders.wants_coupon(i):
                    await seed.grant_coupon(
                        conn,
                        demo_orders.coupon_grant_id(prefix, i),
                        orders.COUPON_ID,
                        orders.buyer_of(i),
                    )


async def first_started(conn: asyncpg.Connection, since: datetime | None) -> datetime | None:
    """When order build handled its first order since `since` (the drain's start; `since`
    is the end of the run's history, if it has one)."""
    value: datetime | None = await conn.fetchval(
        """SELECT min(processed_at) FROM inbox
            WHERE consumer = 'order_build' AND ($1::timestamptz IS NULL OR processed_at > $1)""",
        since,
    )
    return value


async def now(conn: asyncpg.Connection) -> datetime:
    value: datetime = await conn.fetchval("SELECT clock_timestamp()")
    return value


async def database_mib(conn: asyncpg.Connection) -> float:
    size: int = await conn.fetchval("SELECT pg_database_size(current_database())")
    return round(size / 2**20, 1)


async def final_count(conn: asyncpg.Connection, prefix: str) -> int:
    n: int = await conn.fetchval(
        """SELECT (SELECT count(*) FROM orders
                    WHERE order_id LIKE $1 || '%' AND state = ANY($2::text[]))
                + (SELECT count(*) FROM order_rejections WHERE order_id LIKE $1 || '%')""",
        prefix,
        list(FINAL_STATES),
    )
    return n


async def final_times(conn: asyncpg.Connection, prefix: str) -> dict[str, datetime]:
    """Order id -> when it reached its final state."""
    rows = await conn.fetch(
        """SELECT order_id, updated_at AS at FROM orders
            WHERE order_id LIKE $1 || '%' AND state = ANY($2::text[])
           UNION ALL
           SELECT order_id, rejected_at FROM order_rejections WHERE order_id LIKE $1 || '%'""",
        prefix,
        list(FINAL_STATES),
    )
    return {r["order_id"]: r["at"] for r in rows}


async def outcome_counts(conn: asyncpg.Connection, prefix: str) -> dict[str, int]:
    rows = await conn.fetch(
        """SELECT state, count(*) AS n FROM orders WHERE order_id LIKE $1 || '%' GROUP BY state
           UNION ALL
           SELECT 'rejected', count(*) FROM order_rejections WHERE order_id LIKE $1 || '%'""",
        prefix,
    )
    return {r["state"]: r["n"] for r in rows if r["n"]}


async def deadlocks(conn: asyncpg.Connection) -> int:
    """Deadlocks Postgres detected in this database since its statistics began."""
    n: int = await conn.fetchval(
        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    )
    return n


async def wal(conn: asyncpg.Connection) -> dict[str, int]:
    """What Postgres has written to its WAL since its statistics began, on every database
    of the server: records, full-page images and bytes."""
    row = await conn.fetchrow(
        "SELECT wal_records AS records, wal_fpi AS full_page_images, wal_bytes AS bytes"
        " FROM pg_stat_wal"
    )
    assert row is not None
    return {k: int(v) for k, v in row.items()}
