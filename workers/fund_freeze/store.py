"""Writing the transaction records (each order's payment) and their per-merchant details,
a batch at a time."""

from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

from contracts.events.orders import OrderBuiltPayload
from workers.fund_freeze.known import StoredOrder, StoredPart
from workers.fund_freeze.plan import PaymentPlan, platform_fee


@dataclass(frozen=True)
class NewTransaction:
    transaction_id: str
    order: OrderBuiltPayload
    plan: PaymentPlan
    reason: str | None = None  # why it cannot be paid (it stays pending until settlement)


# Each order as order build stored it, with its sub-orders, and whether it has its
# transaction. Lateral lookups by index per order: joined as sets, the planner would scan
# sub_orders and transactions whole for a batch of a few hundred orders.
_STORED = """
SELECT o.order_id, o.buyer_id, o.currency, o.total, t.frozen IS NOT NULL AS frozen,
       s.sub_order_ids, s.merchant_ids, s.amounts, s.platform_discounts
  FROM orders o
  CROSS JOIN LATERAL (
      SELECT array_agg(sub_order_id) AS sub_order_ids, array_agg(merchant_id) AS merchant_ids,
             array_agg(amount) AS amounts, array_agg(platform_discount) AS platform_discounts
        FROM sub_orders WHERE order_id = o.order_id) s
  LEFT JOIN LATERAL (
      SELECT true AS frozen FROM transactions WHERE order_id = o.order_id LIMIT 1) t ON true
 WHERE o.order_id = ANY($1::text[])"""


async def stored_orders(
    conn: asyncpg.Connection, order_ids: Iterable[str]
) -> dict[str, StoredOrder]:
    """The orders (of these) that order build stored: what an order.built must match."""
    rows = await conn.fetch(_STORED, sorted(set(order_ids)))
    return {
        r["order_id"]: StoredOrder(
            r["buyer_id"],
            r["currency"],
            r["total"],
            {
                sub: StoredPart(merchant, amount, platform)
                for sub, merchant, amount, platform in zip(
                    r["sub_order_ids"] or (),
                    r["merchant_ids"] or (),
                    r["amounts"] or (),
                    r["platform_discounts"] or (),
                    strict=True,
                )
            },
            r["frozen"],
        )
        for r in rows
    }


async def fees(conn: asyncpg.Connection, merchant_ids: Iterable[str]) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT merchant_id, fee_bps FROM merchants WHERE merchant_id = ANY($1::text[])",
        sorted(set(merchant_ids)),
    )
    return {r["merchant_id"]: r["fee_bps"] for r in rows}


# Every transaction of the batch and its details in one statement.
_SAVE = """
WITH t AS (
    INSERT INTO transactions (transaction_id, order_id, buyer_id, currency, total,
                              wallet_part, gateway_part, status, status_reason)
    SELECT id, o, buyer, cur, total, wallet, gateway, 'pending_payment', reason
      FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],
                  $7::bigint[], $8::text[]) AS u(id, o, buyer, cur, total, wallet, gateway, reason))
INSERT INTO transaction_details (transaction_id, sub_order_id, merchant_id, currency,
                                 amount, fee, net, subsidy)
SELECT u.transaction_id, u.sub_order_id, u.merchant_id, u.currency, u.gross, u.fee,
       u.gross - u.fee, u.subsidy
  FROM unnest($9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[],
              $14::bigint[], $15::bigint[])
       AS u(transaction_id, sub_order_id, merchant_id, currency, gross, fee, subsidy)"""


async def save_transactions(
    conn: asyncpg.Connection, new: list[NewTransaction], fee_bps: dict[str, int]
) -> None:
    """Each transaction pending payment, and what each merchant is owed: what the buyer
    pays plus what the platform's coupons cover, the fee taken on that gross."""
    if not new:
        return
    details = [
        (t.transaction_id, s, s.amount.amount + s.platform_discount.amount)
        for t in new
        for s in t.order.sub_orders
    ]
    await conn.execute(
        _SAVE,
        [t.transaction_id for t in new],
        [t.order.order_id for t in new],
        [t.order.buyer_id for t in new],
        [t.order.total.currency for t in new],
        [t.order.total.amount for t in new],
        [t.plan.wallet_part for t in new],
        [t.plan.gateway_part for t in new],
        [t.reason for t in new],
        [txn for txn, _, _ in details],
        [s.sub_order_id for _, s, _ in details],
        [s.merchant_id for _, s, _ in details],
        [s.amount.currency for _, s, _ in details],
        [gross for _, _, gross in details],
        [platform_fee(gross, fee_bps[s.merchant_id]) for _, s, gross in details],
        [s.platform_discount.amount for _, s, _ in details],
    )
