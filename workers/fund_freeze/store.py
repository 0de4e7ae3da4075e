"""Writing the transaction record (the order's payment) and its per-merchant details."""

import asyncpg

from contracts.events.orders import OrderBuiltPayload
from workers.fund_freeze.plan import PaymentPlan, platform_fee


async def transaction_exists(conn: asyncpg.Connection, order_id: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM transactions WHERE order_id = $1", order_id))


# The transaction and its per-merchant details in one statement.
_SAVE_TRANSACTION = """
WITH t AS (
    INSERT INTO transactions (transaction_id, order_id, buyer_id, currency, total,
                              wallet_part, gateway_part, status, status_reason)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9))
INSERT INTO transaction_details (transaction_id, sub_order_id, merchant_id, currency,
                                 amount, fee, net, subsidy)
SELECT $1, u.sub_order_id, u.merchant_id, $4, u.gross, u.fee, u.gross - u.fee, u.subsidy
  FROM unnest($10::text[], $11::text[], $12::bigint[], $13::bigint[], $14::bigint[])
       AS u(sub_order_id, merchant_id, gross, fee, subsidy)"""


async def save_transaction(
    conn: asyncpg.Connection,
    transaction_id: str,
    order: OrderBuiltPayload,
    plan: PaymentPlan,
    status: str,
    reason: str | None = None,
) -> None:
    fees = dict(
        await conn.fetch(
            "SELECT merchant_id, fee_bps FROM merchants WHERE merchant_id = ANY($1::text[])",
            [s.merchant_id for s in order.sub_orders],
        )
    )
    # The merchant is owed what the buyer pays plus what the platform's coupons cover; the
    # fee is taken on that gross.
    subsidies = [s.platform_discount.amount for s in order.sub_orders]
    grosses = [s.amount.amount + sub for s, sub in zip(order.sub_orders, subsidies, strict=True)]
    await conn.execute(
        _SAVE_TRANSACTION,
        transaction_id,
        order.order_id,
        order.buyer_id,
        order.total.currency,
        order.total.amount,
        plan.wallet_part,
        plan.gateway_part,
        status,
        reason,
        [s.sub_order_id for s in order.sub_orders],
        [s.merchant_id for s in order.sub_orders],
        grosses,
        [
            platform_fee(gross, fees[s.merchant_id])
            for s, gross in zip(order.sub_orders, grosses, strict=True)
        ],
        subsidies,
    )
