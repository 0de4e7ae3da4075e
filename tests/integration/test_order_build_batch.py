"""Order build is set-based: the usual submissions of a batch are built together, the
rest one by one after them. Each order still ends as if it had been built alone after the
ones before it: stock is counted in the batch's order, a rejected order holds nothing and
leaves no Try behind, and a repeat or a coupon order is judged against what the batch
already wrote (it comes after the usual ones: within a batch, which of two orders for the
last units comes first is the batch's order, not the time of sending)."""

import gc
import types
import uuid
from collections import Counter

import asyncpg
import pytest

from contracts.codec import decode
from contracts.envelope import Envelope
from contracts.events.orders import OrderBuilt
from contracts.events.outcomes import OrderDuplicate, OrderRejected
from contracts.topics import ORDERS_SUBMITTED
from tests.support.pipeline import consumed, order_state, order_submitted, seed_catalogue
from workers.ops import seed
from workers.order_build.step import OrderBuild
from workers.runtime.batch import run_batch
from workers.tcc.barrier import Phase, enter

pytestmark = pytest.mark.integration


async def _scarce_sku(pool: asyncpg.Pool, run: str, units: int) -> str:
    sku = f"sku-scarce-{run}"
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO products VALUES ($1, 'm-cosy', 'c-home', $1)", f"p-{sku}")
        await conn.execute(
            """INSERT INTO skus (sku_id, product_id, warehouse_id, currency, unit_price)
               VALUES ($1, $2, 'w-north', 'EUR', 1000)""",
            sku,
            f"p-{sku}",
        )
        await conn.execute("INSERT INTO stock (sku_id, available) VALUES ($1, $2)", sku, units)
    return sku


async def test_a_batch_builds_each_order_as_if_alone_after_the_ones_before(
    pool: asyncpg.Pool,
) -> None:
    await seed_catalogue(pool)
    run = uuid.uuid4().hex[:8]
    sku = await _scarce_sku(pool, run, 5)
    buyer = f"ob-{run}"
    async with pool.acquire() as conn, conn.transaction():
        await seed.grant_coupon(conn, f"g-{run}", "cp-full", buyer)
        # Order "cancelled"'s Cancel ran before it was built (anti-hanging).
        await enter(conn, f"ob-{run}-cancelled", "stock", Phase.CANCEL)

    def order(name: str, lines: dict[str, int], **extra: object) -> Envelope:
        event = order_submitted(f"ob-{run}-{name}", buyer, lines)
        if extra:
            event = event.model_copy(update={"payload": event.payload.model_copy(update=extra)})
        return event

    first = order("r", {"sku-mug": 1})
    events = [
        first,
        order("a1", {sku: 2}),
        order("a2", {sku: 2}),
        order("a3", {sku: 2}),  # one unit left: out of stock
        order("a4", {sku: 1}),  # fits
        order("unknown", {"sku-none": 1}),
        order("paypal", {"sku-mug": 1}, payment_method="no-such-method"),
        order("cancelled", {"sku-mug": 1}),
        order("coupon", {"sku-lamp": 1}, coupon_codes=["FULL500"]),
        first.model_copy(update={"event_id": uuid.uuid4()}),  # r again: a redelivery
        # r's key under a new order id: the same purchase again (a replay).
        order_submitted(f"ob-{run}-r-again", buyer, {"sku-mug": 1}).model_copy(
            update={"idempotency_key": first.idempotency_key}
        ),
    ]
    result = await run_batch(pool, OrderBuild(), [consumed(e, i) for i, e in enumerate(events)], 1)

    assert (result.processed, len(result.dead)) == (len(events), 0)
    answers: dict[str, list[Envelope]] = {}
    for m in result.messages:
        if m.topic != f"{ORDERS_SUBMITTED.name}.dlq" and m.value is not None:
            e = decode(m.topic, m.value)
            answers.setdefault(e.correlation_id, []).append(e)

    def answer(name: str) -> Envelope:
        (only,) = answers[f"ob-{run}-{name}"]
        return only

    for name in ("r", "a1", "a2", "a4", "coupon"):
        assert isinstance(answer(name), OrderBuilt), name
        assert await order_state(pool, f"ob-{run}-{name}") == "built"
    reasons = {
        name: answer(name).payload.reason_code
        for name in ("a3", "unknown", "paypal", "cancelled")
        if isinstance(answer(name), OrderRejected)
    }
    assert reasons == {
        "a3": "out_of_stock",
        "unknown": "unknown_sku",
        "paypal": "unsupported_payment_method",
        "cancelled": "order_already_cancelled",
    }
    assert isinstance(answer("r-again"), OrderDuplicate)
    assert len(answers[f"ob-{run}-r"]) == 1  # the redelivery answered nothing new

    stock = await pool.fetchrow("SELECT available, held FROM stock WHERE sku_id = $1", sku)
    assert tuple(stock) == (0, 5)
    holds = await pool.fetch(
        "SELECT order_id, quantity FROM stock_holds WHERE sku_id = $1 AND state = 'held'", sku
    )
    assert Counter({r["order_id"]: r["quantity"] for r in holds}) == Counter(
        {f"ob-{run}-a1": 2, f"ob-{run}-a2": 2, f"ob-{run}-a4": 1}
    )
    # A rejected order leaves no Try of its own behind (only the Cancel's, for "cancelled").
    tries = await pool.fetch(
        """SELECT gid, branch, origin FROM tcc_barrier WHERE phase = 'try'
            AND gid = ANY($1::text[])""",
        [f"ob-{run}-{n}" for n in ("a3", "unknown", "paypal", "cancelled")],
    )
    assert [tuple(r) for r in tries] == [(f"ob-{run}-cancelled", "stock", "empty_cancel")]
    grant = await pool.fetchval("SELECT state FROM coupon_grants WHERE grant_id = $1", f"g-{run}")
    assert grant == "locked"


async def test_coupon_orders_are_built_with_the_batch_and_leave_grants_right(
    pool: asyncpg.Pool,
) -> None:
    """Coupon orders with a grant are built with the batch (one grant read, one lock), a
    buyer's orders taking that buyer's grants one each; an order turned down after its grant
    was locked gives it back; a buyer's second order for one grant and a coupon without a
    grant go one by one, after, and are answered as alone."""
    await seed_catalogue(pool)
    run = uuid.uuid4().hex[:8]
    sku = await _scarce_sku(pool, run, 0)
    async with pool.acquire() as conn, conn.transaction():
        for buyer in ("a", "short", "twice"):
            await seed.grant_coupon(conn, f"g-{run}-{buyer}", "cp-rate", f"cb-{run}-{buyer}")
        for grant in ("pair-1", "pair-2"):  # two grants, two orders: one each
            await seed.grant_coupon(conn, f"g-{run}-{grant}", "cp-rate", f"cb-{run}-pair")

    def order(name: str, buyer: str, lines: dict[str, int], codes: list[str]) -> Envelope:
        event = order_submitted(f"cb-{run}-{name}", f"cb-{run}-{buyer}", lines)
        update = {"coupon_codes": codes}
        return event.model_copy(update={"payload": event.payload.model_copy(update=update)})

    events = [
        order("a", "a", {"sku-lamp": 1}, ["TENOFF"]),
        order("short", "short", {sku: 1}, ["TENOFF"]),  # locks its grant, then out of stock
        order("twice-1", "twice", {"sku-mug": 1}, ["TENOFF"]),
        order("twice-2", "twice", {"sku-mug": 1}, ["TENOFF"]),  # one grant for the two
        order("pair-1", "pair", {"sku-mug": 1}, ["TENOFF"]),
        order("pair-2", "pair", {"sku-cap": 1}, ["TENOFF"]),
        order("none", "nobody", {"sku-mug": 1}, ["TENOFF"]),
        order("bogus", "a", {"sku-mug": 1}, ["NO-SUCH"]),
    ]
    result = await run_batch(pool, OrderBuild(), [consumed(e, i) for i, e in enumerate(events)], 1)

    assert (result.processed, len(result.dead)) == (len(events), 0)
    answers = {
        e.correlation_id.removeprefix(f"cb-{run}-"): e
        for m in result.messages
        if m.value is not None
        for e in [decode(m.topic, m.value)]
    }
    # Which of the buyer's two orders gets its one grant is the batch's order (partitions).
    built = {n for n, e in answers.items() if isinstance(e, OrderBuilt)}
    (first,) = built - {"a", "pair-1", "pair-2"}
    (second,) = {"twice-1", "twice-2"} - {first}
    assert first in {"twice-1", "twice-2"}
    assert all(answers[n].payload.discount.amount > 0 for n in ("a", "pair-1", "pair-2"))
    reasons = {n: e.payload.reason_code for n, e in answers.items() if isinstance(e, OrderRejected)}
    assert reasons == {
        "short": "out_of_stock",
        second: "coupon_not_granted",
        "none": "coupon_not_granted",
        "bogus": "unknown_coupon",
    }
    grants = await pool.fetch(
        "SELECT grant_id, state, order_id FROM coupon_grants WHERE grant_id LIKE $1",
        f"g-{run}-%",
    )
    assert {
        r["grant_id"].removeprefix(f"g-{run}-"): (r["state"], r["order_id"]) for r in grants
    } == {
        "a": ("locked", f"cb-{run}-a"),
        "short": ("available", None),
        "twice": ("locked", f"cb-{run}-{first}"),
        "pair-1": ("locked", f"cb-{run}-pair-1"),
        "pair-2": ("locked", f"cb-{run}-pair-2"),
    }
    # The turned-down order leaves no Try behind.
    tries = await pool.fetchval(
        "SELECT count(*) FROM tcc_barrier WHERE gid = $1 AND phase = 'try'", f"cb-{run}-short"
    )
    assert tries == 0


async def test_a_batch_with_rejections_leaves_no_frames_for_the_cycle_collector(
    pool: asyncpg.Pool,
) -> None:
    """A rejection is kept for its answer without its traceback: kept with it, its frames
    (and through them every caller's, with the whole batch) were a reference cycle that only
    the garbage collector freed, tens of thousands of objects per batch."""
    await seed_catalogue(pool)
    run = uuid.uuid4().hex[:8]
    buyer = f"obgc-{run}"
    events = [
        order_submitted(f"obgc-{run}-ok", buyer, {"sku-mug": 1}),
        order_submitted(f"obgc-{run}-unknown", buyer, {"sku-none": 1}),
        order_submitted(f"obgc-{run}-method", buyer, {"sku-mug": 1}).model_copy(
            update={
                "payload": order_submitted("x", buyer, {"sku-mug": 1}).payload.model_copy(
                    update={"order_id": f"obgc-{run}-method", "payment_method": "no-such-method"}
                )
            }
        ),
    ]
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        result = await run_batch(
            pool, OrderBuild(), [consumed(e, i) for i, e in enumerate(events)], 1
        )
        gc.collect()
        ours = [
            o.f_code.co_filename
            for o in gc.garbage
            if isinstance(o, types.FrameType) and "/workers/" in o.f_code.co_filename
        ]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert result.processed == len(events)
    reasons = [
        e.payload.reason_code
        for e in (decode(m.topic, m.value) for m in result.messages if m.value is not None)
        if isinstance(e, OrderRejected)
    ]
    assert sorted(reasons) == ["unknown_sku", "unsupported_payment_method"]
    assert ours == []
