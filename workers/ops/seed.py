"""Demo data: a small catalogue, coupons and funded wallets. Safe to run again."""

import json
from datetime import UTC, datetime, timedelta

import asyncpg

from workers.ledger import accounts, postings

CURRENCY = "EUR"
MERCHANTS = [
    ("m-acme", "Acme Apparel", 60),
    ("m-bolt", "Bolt Books", 80),
    ("m-cosy", "Cosy Home", 50),
]
WAREHOUSES = [("w-north", "North"), ("w-south", "South")]
CATEGORIES = [("c-apparel", "Apparel"), ("c-books", "Books"), ("c-home", "Home")]
# sku, merchant, category, warehouse, price, stock, tiers. The last digits of some prices
# pick a gateway simulator outcome for gateway-only orders of one unit (13: declined,
# 42: duplicated callback, 99: amount mismatch -> review).
SKUS = [
    ("sku-tee", "m-acme", "c-apparel", "w-north", 1500, 100_000, [(3, 1400), (10, 1250)]),
    ("sku-cap", "m-acme", "c-apparel", "w-south", 1200, 100_000, []),
    ("sku-novel", "m-bolt", "c-books", "w-south", 2500, 100_000, [(5, 2300)]),
    ("sku-atlas", "m-bolt", "c-books", "w-north", 4200, 100_000, []),
    ("sku-mug", "m-cosy", "c-home", "w-north", 890, 100_000, [(4, 790)]),
    ("sku-lamp", "m-cosy", "c-home", "w-south", 3900, 100_000, []),
    ("sku-declined", "m-cosy", "c-home", "w-north", 1013, 100_000, []),
    ("sku-dupcall", "m-acme", "c-apparel", "w-north", 1042, 100_000, []),
    ("sku-mismatch", "m-bolt", "c-books", "w-south", 1099, 100_000, []),
    ("sku-rare", "m-bolt", "c-books", "w-north", 9900, 3, []),
]
COUPONS = [
    # id, code, kind, threshold, reduction, rate_bps, max_discount, ladder, merchant
    ("cp-full", "FULL500", "full_reduction", 3000, 500, None, None, None, None),
    ("cp-rate", "TENOFF", "discount_rate", None, None, 1000, 2000, None, None),
    ("cp-ladder", "LADDER", "ladder", None, None, None, None, [[2000, 200], [5000, 700]], "m-bolt"),
]


def buyer_id(n: int) -> str:
    return f"buyer-{n:03d}"


async def seed_catalogue(conn: asyncpg.Connection) -> None:
    await conn.executemany(
        "INSERT INTO merchants VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", MERCHANTS
    )
    await conn.executemany(
        "INSERT INTO warehouses VALUES ($1, $2) ON CONFLICT DO NOTHING", WAREHOUSES
    )
    await conn.executemany(
        "INSERT INTO categories VALUES ($1, $2) ON CONFLICT DO NOTHING", CATEGORIES
    )
    for sku, merchant, category, warehouse, price, stock, tiers in SKUS:
        product = f"p-{sku.removeprefix('sku-')}"
        await conn.execute(
            "INSERT INTO products VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            product,
            merchant,
            category,
            product,
        )
        await conn.execute(
            """INSERT INTO skus (sku_id, product_id, warehouse_id, specs, currency, unit_price)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
            sku,
            product,
            warehouse,
            json.dumps({"size": "one"}),
            CURRENCY,
            price,
        )
        await conn.execute(
            """INSERT INTO stock (sku_id, available) VALUES ($1, $2)
               ON CONFLICT (sku_id) DO NOTHING""",
            sku,
            stock,
        )
        await conn.executemany(
            "INSERT INTO price_tiers VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            [(sku, q, p) for q, p in tiers],
        )
    now = datetime.now(UTC)
    for cid, code, kind, thr, red, rate, cap, ladder, scope in COUPONS:
        await conn.execute(
            """INSERT INTO coupons (coupon_id, code, kind, currency, threshold, reduction,
                   rate_bps, max_discount, ladder, merchant_id, valid_from, valid_until)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
               ON CONFLICT DO NOTHING""",
            cid,
            code,
            kind,
            CURRENCY,
            thr,
            red,
            rate,
            cap,
            json.dumps(ladder) if ladder else None,
            scope,
            now - timedelta(days=1),
            now + timedelta(days=365),
        )


async def grant_coupon(conn: asyncpg.Connection, grant_id: str, coupon_id: str, buyer: str) -> None:
    await conn.execute(
        """INSERT INTO coupon_grants (grant_id, coupon_id, buyer_id, state)
           VALUES ($1, $2, $3, 'available') ON CONFLICT DO NOTHING""",
        grant_id,
        coupon_id,
        buyer,
    )


async def top_up(conn: asyncpg.Connection, buyer: str, amount: int, key: str) -> None:
    """Fund a wallet through the ledger (from the outside-world funding account)."""
    wallet = await accounts.ensure(conn, accounts.wallet(buyer, CURRENCY))
    funding = await accounts.ensure(conn, accounts.external("funding", CURRENCY))
    await postings.post(
        conn,
        kind="top_up",
        order_id=None,
        idempotency_key=key,
        currency=CURRENCY,
        legs=[postings.Leg(funding, wallet, amount, "top_up")],
    )
