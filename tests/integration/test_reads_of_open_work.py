"""The reads of open work (the sweeper's, every few seconds for as long as payflow runs; an
abandoned order's payment; a review case's): they find exactly the work that is due, and
reach it through indexes, never by reading every payment, so they cost the same after a
billion orders as after ten (each planted row is rolled back)."""

import json
from collections.abc import Awaitable, Callable
from typing import Any, cast

import asyncpg
import pytest

from tests.support.gateway_edge import plant_payment, uid
from workers.review import store as review_store
from workers.sweeper import store

pytestmark = pytest.mark.integration

GRACE_S = 60.0
WINDOW_S = 900.0


async def plant(
    conn: asyncpg.Connection, name: str, status: str, age_s: float, check_in_s: float | None
) -> str:
    """A payment in `status`, created `age_s` ago, its next check `check_in_s` from now."""
    payment_id = uid(f"pay-{name}")
    await plant_payment(
        conn,
        order_id=uid(f"ord-{name}"),
        transaction_id=uid(f"txn-{name}"),
        payment_id=payment_id,
        order_state="payment_requested",
        status=status,
        buyer=uid("buyer-sweep"),
    )
    await conn.execute(
        """UPDATE payment_requests SET created_at = now() - make_interval(secs => $2),
               next_check_at = now() + make_interval(secs => $3)
           WHERE payment_id = $1""",
        payment_id,
        age_s,
        check_in_s,  # NULL: none scheduled
    )
    return payment_id


async def test_the_due_payments_are_the_open_ones_past_their_check_and_the_expired_to_void(
    conn: asyncpg.Connection,
) -> None:
    past_grace = await plant(conn, "past-grace", "pending", 120, None)
    unknown_checked = await plant(conn, "unknown", "unknown", 30, -5)
    to_void = await plant(conn, "to-void", "expired", 1000, -1)
    planted = {past_grace, unknown_checked, to_void}
    planted |= {
        await plant(conn, "in-grace", "pending", 5, None),
        await plant(conn, "requesting-in-grace", "requesting", 5, None),
        await plant(conn, "later", "unknown", 600, 3600),
        await plant(conn, "nothing-to-void", "expired", 2000, None),
        await plant(conn, "decided", "succeeded", 5000, None),
        await plant(conn, "decided-checked", "failed", 5000, -100),
    }

    due = await store.due_payments(conn, GRACE_S, WINDOW_S, 10_000)

    mine = [p.payment_id for p in due if p.payment_id in planted]
    # Oldest due first: the past-grace one by its creation, the others by their check.
    assert mine == [past_grace, unknown_checked, to_void]


class _Captured:
    """Stands in for a connection to learn the statement a store function sends."""

    def __init__(self) -> None:
        self.sql = ""
        self.args: tuple[Any, ...] = ()

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        self.sql, self.args = sql, args
        return []

    async def fetchrow(self, sql: str, *args: Any) -> None:
        self.sql, self.args = sql, args


def _reads(plan: dict[str, Any]) -> tuple[set[str], set[str]]:
    """The tables read whole, and the indexes used, anywhere in a JSON plan."""
    whole = {plan["Relation Name"]} if plan["Node Type"] == "Seq Scan" else set()
    indexes = {plan["Index Name"]} if "Index Name" in plan else set()
    for child in plan.get("Plans", []):
        more_whole, more_indexes = _reads(child)
        whole |= more_whole
        indexes |= more_indexes
    return whole, indexes


async def _plan_of(
    conn: asyncpg.Connection, read: Callable[[asyncpg.Connection], Awaitable[object]]
) -> tuple[set[str], set[str]]:
    """The plan of the statement `read` sends."""
    captured = _Captured()
    await read(cast(asyncpg.Connection, captured))
    # With sequential scans priced out, a table is still read whole when no index can serve
    # the query: that is what this looks for, whatever the tables hold now.
    await conn.execute("SET LOCAL enable_seqscan = off")
    raw = await conn.fetchval("EXPLAIN (FORMAT JSON) " + captured.sql, *captured.args)
    return _reads(json.loads(raw)[0]["Plan"])


async def test_due_payments_are_read_through_the_index_of_open_payments(
    conn: asyncpg.Connection,
) -> None:
    whole, indexes = await _plan_of(conn, lambda c: store.due_payments(c, GRACE_S, WINDOW_S, 100))

    assert "payment_requests" not in whole
    assert "payment_requests_check_due" in indexes


async def test_expired_orders_are_read_through_the_index_of_open_orders(
    conn: asyncpg.Connection,
) -> None:
    whole, indexes = await _plan_of(conn, lambda c: store.expired_orders(c, WINDOW_S, 100))

    assert "orders" not in whole
    assert "orders_open_by_age" in indexes


async def test_an_orders_latest_payment_is_read_through_its_transaction(
    conn: asyncpg.Connection,
) -> None:
    first = await plant(conn, "latest", "pending", 100, None)
    order_id = await conn.fetchval(
        "SELECT order_id FROM payment_requests WHERE payment_id = $1", first
    )
    second = first + "-a2"
    await conn.execute(
        """INSERT INTO payment_requests (payment_id, transaction_id, order_id, attempt,
               idempotency_key, currency, amount, status, request_body)
           SELECT $2, transaction_id, order_id, 2, $2, currency, amount, 'unknown', '{}'
             FROM payment_requests WHERE payment_id = $1""",
        first,
        second,
    )

    latest = await store.latest_payment(conn, order_id)
    in_review = await review_store.payment(conn, None, order_id)
    named = await review_store.payment(conn, first, None)

    assert latest is not None and latest["payment_id"] == second
    assert in_review is not None and in_review["payment_id"] == second
    assert named is not None and named["payment_id"] == first
    for read in (
        lambda c: store.latest_payment(c, order_id),
        lambda c: review_store.payment(c, None, order_id),
    ):
        whole, indexes = await _plan_of(conn, read)
        assert "payment_requests" not in whole
        assert "payment_requests_transaction_id_attempt_key" in indexes
