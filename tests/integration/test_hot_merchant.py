"""5,000 orders to one merchant through the real pipeline (all stages as a worker process,
plus a second settlement replica): every order settles once, and the merchant's payable
and the platform's fee account, hot rows every settlement credits, end exactly right.

The merchant, its SKUs and the currency (CHF) are this test's own, so no other test's
orders can touch the two accounts whose exact balances are asserted. Orders are
wallet_only, so no gateway is involved.
"""

import asyncio
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from contracts.codec import encode
from contracts.events.orders import OrderLine, OrderSubmitted, OrderSubmittedPayload
from contracts.topics import ORDERS_SUBMITTED
from infra.settings import Settings
from tests.support.pipeline import assert_audit_clean, eventually, seed_catalogue, start_workers
from workers.ledger import accounts, postings
from workers.ops.processes import Children

pytestmark = pytest.mark.integration

ORDERS = 5_000
BUYERS = 8
CUR = "CHF"
FEE_BPS = 55
WALLET = 8_000 * (ORDERS // BUYERS + 1)  # an order costs at most 5 x 790 + 3,900


async def _hot_catalogue(pool: asyncpg.Pool, run: str) -> tuple[str, list[str]]:
    """A merchant of this run with two SKUs in CHF, one with a price tier, in two
    warehouses (an order with both has two sub-orders, so two payouts to one account)."""
    merchant = f"m-hot-{run}"
    skus = [
        (f"sku-hot-{run}-mug", "w-north", 890, [(4, 790)]),
        (f"sku-hot-{run}-lamp", "w-south", 3_900, []),
    ]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO merchants VALUES ($1, $2, $3)", merchant, "Hot", FEE_BPS)
        for sku, warehouse, price, tiers in skus:
            product = f"p-{sku}"
            await conn.execute(
                "INSERT INTO products VALUES ($1, $2, 'c-home', $1)", product, merchant
            )
            await conn.execute(
                """INSERT INTO skus (sku_id, product_id, warehouse_id, currency, unit_price)
                   VALUES ($1, $2, $3, $4, $5)""",
                sku,
                product,
                warehouse,
                CUR,
                price,
            )
            await conn.execute("INSERT INTO stock (sku_id, available) VALUES ($1, 100000)", sku)
            await conn.executemany(
                "INSERT INTO price_tiers VALUES ($1, $2, $3)", [(sku, q, p) for q, p in tiers]
            )
    return merchant, [sku for sku, *_ in skus]


async def _fund(pool: asyncpg.Pool, buyer: str) -> None:
    # What `fund_wallet` does, in this test's currency.
    async with pool.acquire() as conn, conn.transaction():
        wallet = await accounts.ensure(conn, accounts.wallet(buyer, CUR))
        funding = await accounts.ensure(conn, accounts.external("funding", CUR))
        await postings.post(
            conn,
            kind="top_up",
            order_id=None,
            idempotency_key=f"hot-topup:{buyer}",
            currency=CUR,
            legs=[postings.Leg(funding, wallet, WALLET, "top_up")],
        )


def _order(run: str, i: int, skus: list[str]) -> OrderSubmitted:
    order_id = f"hot-{run}-{i:05d}"
    mug, lamp = skus
    lines = [OrderLine(sku_id=mug, quantity=1 + i % 5)]  # 4 and 5 mugs hit the price tier
    if i % 3 == 0:
        lines.append(OrderLine(sku_id=lamp, quantity=1))
    return OrderSubmitted.new(
        order_id,
        OrderSubmittedPayload(
            order_id=order_id,
            buyer_id=f"buyer-hot-{run}-{i % BUYERS}",
            currency=CUR,
            items=lines,
            payment_preference="wallet_only",
        ),
        idempotency_key=order_id,
    )


async def _balance(pool: asyncpg.Pool, account_id: str) -> tuple[int, int]:
    row = await pool.fetchrow(
        "SELECT total, available FROM accounts WHERE account_id = $1", account_id
    )
    return (row["total"], row["available"]) if row else (0, 0)


async def test_one_hot_merchant_settles_every_order_exactly(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)  # warehouses and categories
    run = uuid.uuid4().hex[:8]
    merchant, skus = await _hot_catalogue(pool, run)
    for b in range(BUYERS):
        await _fund(pool, f"buyer-hot-{run}-{b}")
    payable = accounts.merchant_payable(merchant, CUR).account_id
    fee_income = accounts.platform("fee_income", CUR).account_id
    payable_before, fees_before = await _balance(pool, payable), await _balance(pool, fee_income)

    sent = [
        await producer.send(
            ORDERS_SUBMITTED.name, encode(o), key=o.correlation_id.encode()
        )  # enqueued; acknowledged below
        for o in (_order(run, i, skus) for i in range(ORDERS))
    ]
    await asyncio.gather(*sent)

    prefix = f"hot-{run}-"
    children = Children(services.state_dir / "logs" / "tests")
    start_workers(children)
    # A second settlement replica: the two flush into the same merchant and fee rows.
    children.start("test-settlement-replica", "run", "settlement")
    try:

        async def all_settled() -> bool:
            assert not children.dead(), "the workers died"
            rows = await pool.fetch(
                """SELECT state, count(*) AS n FROM orders WHERE order_id LIKE $1 || '%'
                   GROUP BY state""",
                prefix,
            )
            states = {r["state"]: r["n"] for r in rows}
            final = {s: n for s, n in states.items() if s in ("cancelled", "manual_review")}
            assert not final, f"orders that will never settle: {final}"
            return bool(states.get("settled", 0) == ORDERS)

        await eventually(all_settled, 600, f"all {ORDERS} orders settled")
    finally:
        await children.stop()

    rejected = await pool.fetchval(
        "SELECT count(*) FROM order_rejections WHERE order_id LIKE $1 || '%'", prefix
    )
    assert rejected == 0
    sums = await pool.fetchrow(
        """SELECT sum(d.net) AS net, sum(d.fee) AS fee, count(*) AS payouts,
                  count(DISTINCT d.merchant_id) AS merchants
           FROM transaction_details d JOIN transactions t USING (transaction_id)
           WHERE t.order_id LIKE $1 || '%'""",
        prefix,
    )
    assert sums["merchants"] == 1
    assert sums["payouts"] == ORDERS + len(range(0, ORDERS, 3))  # lamps: a second sub-order
    assert sums["net"] > 0 and sums["fee"] > 0
    payable_after, fees_after = await _balance(pool, payable), await _balance(pool, fee_income)
    assert payable_after[0] - payable_before[0] == sums["net"]
    assert payable_after[1] - payable_before[1] == sums["net"]
    assert fees_after[0] - fees_before[0] == sums["fee"]
    assert fees_after[1] - fees_before[1] == sums["fee"]

    postings_per_order = await pool.fetch(
        """SELECT o.order_id, count(l.ledger_txn_id) AS n FROM orders o
           LEFT JOIN ledger_transactions l ON l.order_id = o.order_id AND l.kind = 'purchase'
           WHERE o.order_id LIKE $1 || '%' GROUP BY o.order_id""",
        prefix,
    )
    assert len(postings_per_order) == ORDERS
    assert {r["n"] for r in postings_per_order} == {1}

    await assert_audit_clean(pool)
