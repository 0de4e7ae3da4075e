"""What the sweeper's conclusions say to the next stage, built from our own records: an
order's decision (read by settlement) and a top-up's gateway result (read by the wallet)."""

from typing import Literal

import asyncpg

from contracts.events.payments import PaymentDecisionPayload
from contracts.events.wallet import TopUpGatewayResultPayload
from contracts.money import Money


async def decision_payload(
    conn: asyncpg.Connection, order_id: str, reason_code: str, detail: str
) -> PaymentDecisionPayload:
    """The order's decision as settlement reads it, amounts from our own records."""
    t = await conn.fetchrow(
        """SELECT transaction_id, buyer_id, currency, total, wallet_part, gateway_part
           FROM transactions WHERE order_id = $1""",
        order_id,
    )
    if t is None:
        raise LookupError(f"order {order_id} has no transaction")

    def m(amount: int) -> Money:
        return Money(amount=amount, currency=t["currency"])

    return PaymentDecisionPayload(
        order_id=order_id,
        transaction_id=t["transaction_id"],
        buyer_id=t["buyer_id"],
        total=m(t["total"]),
        wallet_part=m(t["wallet_part"]),
        gateway_part=m(t["gateway_part"]),
        reason_code=reason_code,
        detail=detail,
    )


async def top_up_payload(
    conn: asyncpg.Connection,
    operation_id: str,
    status: Literal["failed", "unresolved"],
    detail: str,
) -> TopUpGatewayResultPayload:
    """What the sweeper concluded about a top-up's charge, for the wallet stage to close."""
    w = await conn.fetchrow(
        "SELECT buyer_id, currency, amount FROM wallet_operations WHERE operation_id = $1",
        operation_id,
    )
    if w is None:
        raise LookupError(f"no wallet operation {operation_id}")
    return TopUpGatewayResultPayload(
        operation_id=operation_id,
        buyer_id=w["buyer_id"],
        amount=Money(amount=w["amount"], currency=w["currency"]),
        status=status,
        detail=detail,
    )
