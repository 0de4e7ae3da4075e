"""Writing the transaction record (the order's payment) and its per-merchant details."""

import asyncpg

from contracts.events.orders import OrderBuiltPayload
from workers.fund_freeze.plan import PaymentPlan, platform_fee


async def transaction_exists(conn: asyncpg.Connection, order_id: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM transactions WHERE order_id = $1", order_id))


async def save_transaction(
    conn: asyncpg.Connection,
    transaction_id: str,
    order: OrderBuiltPayload,
    plan: PaymentPlan,
    status: str,
    reason: str | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO transactions (transaction_id, order_id, buyer_id, currency, total,
                                     wallet_part, gateway_part, status, status_reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        transaction_id,
        order.order_id,
        order.buyer_id,
        order.total.currency,
        order.total.amount,
        plan.wallet_part,
        plan.gateway_part,
        status,
        reason,
    )
    fees = dict(
        await conn.fetch(
            "SELECT merchant_id, fee_bps FROM merchants WHERE merchant_id = ANY($1::text[])",
            [s.merchant_id for s in order.sub_orders],
        )
    )
    rows = []
    for sub in order.sub_orders:
        # The merchant is owed what the buyer pays plus what the platform's coupons cover;
        # the fee is taken on that gross.
        subsidy = sub.platform_discount.amount
        gross = sub.amount.amount + subsidy
        fee = platform_fee(gross, fees[sub.merchant_id])
        rows.append(
            (
                transaction_id,
                sub.sub_order_id,
                sub.merchant_id,
                sub.amount.currency,
                gross,
                fee,
                gross - fee,
                subsidy,
            )
        )
    await conn.executemany(
        """INSERT INTO transaction_details (transaction_id, sub_order_id, merchant_id, currency,
                                            amount, fee, net, subsidy)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        rows,
    )
