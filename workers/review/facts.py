"""What our records say about a review case's subject now (the input of rules.plan)."""

import asyncpg

from workers.review import store
from workers.review.cases import Case
from workers.review.rules import Facts


def refund_id(c: Case) -> str:
    """The gateway refund a case is about (its subject may carry a '#n' of a later hold)."""
    return str(c.evidence.get("refund_id") or c.subject.removeprefix("refund:"))


async def operation_id(conn: asyncpg.Connection, c: Case) -> str | None:
    """The wallet operation a case is about: a withdrawal's subject, or a top-up's payment."""
    if c.subject.startswith("withdrawal:"):
        return c.subject.removeprefix("withdrawal:")
    if c.kind == "top_up_unresolved" and c.payment_id:
        pay = await store.payment(conn, c.payment_id, None)
        return pay["wallet_operation_id"] if pay is not None else None
    return None


async def facts(conn: asyncpg.Connection, c: Case) -> Facts:
    order_state = await store.order_state(conn, c.order_id) if c.order_id else None
    pay = (
        await store.payment(conn, c.payment_id, c.order_id)
        if (c.payment_id or c.order_id)
        else None
    )
    refund = await store.refund(conn, refund_id(c)) if c.subject.startswith("refund:") else None
    order_refund = None
    if refund is not None and refund["kind"] == "order_refund":
        order_refund = await store.order_refund(conn, refund_id(c).removeprefix("order:"))
    op_id = await operation_id(conn, c)
    op = await store.operation(conn, op_id) if op_id else None
    ref = pay["gateway_ref"] if pay is not None else None
    holder = c.order_id or (op_id if op is not None and op["kind"] == "withdrawal" else None)
    return Facts(
        kind=c.kind,
        order_state=order_state,
        payment_status=pay["status"] if pay is not None else None,
        gateway_ref=ref,
        holds_open=await store.holds_open(conn, holder) if holder else False,
        refund_status=refund["status"] if refund is not None else None,
        refund_kind=refund["kind"] if refund is not None else None,
        charge_refunded=await store.charge_refunded(conn, ref) if ref else False,
        order_refund_status=order_refund["status"] if order_refund is not None else None,
        card_outcome=order_refund["card_outcome"] if order_refund is not None else None,
        operation_kind=op["kind"] if op is not None else None,
        operation_status=op["status"] if op is not None else None,
    )
