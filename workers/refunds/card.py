"""The card share of an order refund, once the gateway has answered: it left through the
gateway, or (the gateway would not refund the card) it goes to the buyer's wallet. Either
way the refund is complete and `order.refunded` says where every share went."""

import asyncpg

from contracts.events.outcomes import OrderRefundedPayload
from contracts.money import Money
from workers.ledger import accounts, postings
from workers.refunds import rules, store


async def settle(
    tx: asyncpg.Connection, order_refund_id: str, succeeded: bool
) -> OrderRefundedPayload | None:
    """None when the refund is no longer waiting (already settled)."""
    pending = await store.lock_pending(tx, order_refund_id)
    if pending is None:
        return None
    cur = pending.currency
    leg = rules.card_outcome_leg(
        succeeded=succeeded,
        card_refunds=await accounts.ensure(tx, accounts.platform(rules.CARD_REFUNDS, cur)),
        gateway_clearing=await accounts.ensure(tx, accounts.external("gateway_clearing", cur)),
        wallet=await accounts.ensure(tx, accounts.wallet(pending.buyer_id, cur)),
        amount=pending.card_amount,
    )
    await postings.post(
        tx,
        kind="card_refund" if succeeded else "card_refund_to_wallet",
        order_id=pending.order_id,
        idempotency_key=f"card_refund:{order_refund_id}",
        currency=cur,
        legs=[leg],
    )
    await store.complete(tx, order_refund_id, "succeeded" if succeeded else "to_wallet")
    to_wallet = pending.wallet_amount + (0 if succeeded else pending.card_amount)

    def m(amount: int) -> Money:
        return Money(amount=amount, currency=cur)

    return OrderRefundedPayload(
        order_id=pending.order_id,
        refund_id=pending.refund_id,
        sub_order_id=pending.sub_order_id,
        amount=m(pending.amount),
        to_wallet=m(to_wallet),
        to_card=m(pending.card_amount) if succeeded else None,
    )
