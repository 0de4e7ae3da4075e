"""A gateway refund held for review, sent again by an operator and held again: each hold is a
case of its own (the resolved one stays as it was), each resolved once (real Postgres; the
refund job's hold is reproduced by its own calls, no gateway needed)."""

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from infra.settings import Settings
from tests.support.gateway_edge import plant_payment
from tests.support.services import scratch_database
from workers.late_payments import records
from workers.review.actions import ReviewRefused, resolve
from workers.review.openers import refund_held

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module")
async def pool(services: Settings) -> AsyncIterator[asyncpg.Pool]:
    """Planted rows without their postings: a database of its own."""
    async with scratch_database(services, "review_held") as p:
        yield p


async def _held(pool: asyncpg.Pool, refund_id: str) -> int:
    async with pool.acquire() as conn, conn.transaction():
        await records.set_refund(conn, refund_id, "held_for_review", {"step": "unknown"})
        refund = await records.lock_refund(conn, refund_id)
        assert refund is not None
        return await refund_held(conn, refund, "refund outcome still unknown", {"step": "x"})


async def test_a_refund_held_again_after_an_operator_sent_it_is_a_new_case(
    pool: asyncpg.Pool,
) -> None:
    uid = uuid.uuid4().hex[:8]
    payment_id, ref = f"pay-held-{uid}", f"gw-held-{uid}"
    async with pool.acquire() as conn, conn.transaction():
        await plant_payment(conn, order_id=f"ord-held-{uid}", transaction_id=f"txn-held-{uid}",
                            payment_id=payment_id, order_state="cancelled",
                            status="succeeded", buyer="buyer-held")  # fmt: skip
        await records.open_late_refund(conn, payment_id=payment_id, gateway_ref=ref,
                                       adapter="direct", amount=500, currency="EUR",
                                       reason="late_success", status="unknown",
                                       evidence={"step": "opened"})  # fmt: skip
    refund_id = records.late_refund_id(ref)

    first = await _held(pool, refund_id)
    assert await _held(pool, refund_id) == first  # the same hold seen twice: one case
    with pytest.raises(ReviewRefused, match="fail does not fit a refund_held case"):
        await resolve(pool, None, first, "fail", "no", "gina")
    done = await resolve(pool, None, first, "refund", "the gateway is back", "gina")
    assert done.detail["refund_id"] == refund_id
    status = await pool.fetchval(
        "SELECT status FROM gateway_refunds WHERE refund_id = $1", refund_id
    )
    assert status == "requested"  # the refund job sends it again

    second = await _held(pool, refund_id)
    assert second != first
    with pytest.raises(ReviewRefused, match="resolved already by gina"):
        await resolve(pool, None, first, "explain", "no", "hal")
    await resolve(pool, None, second, "explain", "refunded by the gateway's support", "hal")
    rows = await pool.fetch(
        "SELECT subject, state, resolution FROM review_cases WHERE kind = 'refund_held' "
        "ORDER BY case_id"
    )
    assert [tuple(r) for r in rows] == [
        (f"refund:{refund_id}", "resolved", "refund"),
        (f"refund:{refund_id}#2", "resolved", "explain"),
    ]
