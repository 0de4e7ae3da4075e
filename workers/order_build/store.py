"""Writing built and rejected orders."""

import asyncpg

from contracts.events.orders import OrderSubmittedPayload
from workers.order_build.pricing import PricedOrder


async def existing_digest(conn: asyncpg.Connection, order_id: str) -> str | None:
    digest: str | None = await conn.fetchval(
        """SELECT request_digest FROM orders WHERE order_id = $1
           UNION ALL SELECT request_digest FROM order_rejections WHERE order_id = $1""",
        order_id,
    )
    return digest


async def save_order(
    conn: asyncpg.Connection, order: OrderSubmittedPayload, priced: PricedOrder, digest: str
) -> None:
    await conn.execute(
        """INSERT INTO orders (order_id, buyer_id, currency, payment_preference, subtotal,
                               discount, total, request_digest, state)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'built')""",
        order.order_id,
        order.buyer_id,
        order.currency,
        order.payment_preference,
        priced.subtotal,
        priced.discount,
        priced.total,
        digest,
    )
    await conn.executemany(
        """INSERT INTO sub_orders (sub_order_id, order_id, merchant_id, warehouse_id, currency,
                                   subtotal, discount, amount, platform_discount)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        [
            (
                p.sub_order_id,
                order.order_id,
                p.merchant_id,
                p.warehouse_id,
                order.currency,
                p.subtotal,
                p.discount,
                p.amount,
                p.platform_discount,
            )
            for p in priced.parts
        ],
    )
    await conn.executemany(
        """INSERT INTO order_items (sub_order_id, sku_id, quantity, unit_price, line_total)
           VALUES ($1, $2, $3, $4, $5)""",
        [
            (p.sub_order_id, li.sku_id, li.quantity, li.unit_price, li.total)
            for p in priced.parts
            for li in p.lines
        ],
    )


async def save_rejection(
    conn: asyncpg.Connection, order_id: str, digest: str, code: str, detail: str
) -> None:
    await conn.execute(
        """INSERT INTO order_rejections (order_id, request_digest, reason_code, detail)
           VALUES ($1, $2, $3, $4)""",
        order_id,
        digest,
        code,
        detail,
    )
