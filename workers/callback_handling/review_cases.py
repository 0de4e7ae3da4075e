"""The review cases the decision path opens, in the decision's transaction: a charge whose
amount the gateway's own record says differs from what we asked, and late money held for
review (PAYFLOW_LATE_PAYMENT_ACTION=review). Operators work them with `payflow review`."""

import asyncpg

from workers.callback_handling.store import PaymentRequest
from workers.gateway.port import Notice
from workers.review.cases import open_case


async def amount_mismatch(
    tx: asyncpg.Connection, req: PaymentRequest, notice: Notice, detail: str | None
) -> None:
    what = "order" if req.order_id else "top-up"
    await open_case(
        tx,
        "amount_mismatch",
        f"payment:{req.payment_id}",
        detail or f"the gateway's record of this {what}'s charge differs from what we asked",
        {
            "gateway_ref": notice.gateway_ref,
            "charged": notice.amount.amount,
            "asked": req.amount,
            "currency": req.currency,
            "callback_id": notice.callback_id,
            "wallet_operation_id": req.wallet_operation_id,
        },
        order_id=req.order_id,
        payment_id=req.payment_id,
    )


async def late_money_held(
    tx: asyncpg.Connection, req: PaymentRequest, notice: Notice, refund_id: str, detail: str
) -> None:
    await open_case(
        tx,
        "late_money_held",
        f"refund:{refund_id}",
        f"money we did not sell for, held for review: {detail}",
        {
            "refund_id": refund_id,
            "gateway_ref": notice.gateway_ref,
            "amount": notice.amount.amount,
            "currency": notice.amount.currency,
            "callback_id": notice.callback_id,
        },
        order_id=req.order_id,
        payment_id=req.payment_id,
    )
