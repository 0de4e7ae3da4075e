"""The purchase posting of a transaction: built from our own records, checked before anything
is confirmed (workers/settlement/checks.py), then posted. A transaction whose numbers do not
add up is never posted; settlement sends it to review instead."""

from dataclasses import dataclass

import asyncpg

from contracts.events.payments import PaymentDecisionPayload
from workers.ledger import accounts, postings
from workers.ledger.postings import Leg
from workers.settlement import checks, prefetch
from workers.settlement.legs import Payout, purchase_legs


class Broken(Exception):
    """Settling this transaction would break an invariant our checks did not see coming."""


@dataclass(frozen=True)
class Purchase:
    payouts: list[tuple[Payout, str]]  # with each merchant's id
    legs: list[Leg]
    problems: list[str]  # empty: it may settle


async def build(tx: asyncpg.Connection, p: PaymentDecisionPayload) -> Purchase:
    cur = p.total.currency
    payouts = []
    for r in await prefetch.details(tx, p.transaction_id):
        acct = await accounts.ensure(tx, accounts.merchant_payable(r["merchant_id"], cur))
        payout = Payout(r["sub_order_id"], acct, r["amount"], r["fee"], r["subsidy"])
        payouts.append((payout, r["merchant_id"]))
    clearing = await accounts.ensure(tx, accounts.platform("order_clearing", cur))
    try:
        legs = purchase_legs(
            wallet=await accounts.ensure(tx, accounts.wallet(p.buyer_id, cur)),
            gateway_clearing=await accounts.ensure(tx, accounts.external("gateway_clearing", cur)),
            clearing=clearing,
            fee_income=await accounts.ensure(tx, accounts.platform("fee_income", cur)),
            coupon_subsidy=await accounts.ensure(tx, accounts.platform("coupon_subsidy", cur)),
            wallet_part=p.wallet_part.amount,
            gateway_part=p.gateway_part.amount,
            payouts=[po for po, _ in payouts],
        )
    except ValueError as cannot:  # the payments do not cover the sub-orders
        legs, found = [], [str(cannot)]
    else:
        found = []
    found += checks.problems(
        total=p.total.amount,
        wallet_part=p.wallet_part.amount,
        gateway_part=p.gateway_part.amount,
        payouts=[po for po, _ in payouts],
        legs=legs,
        clearing=clearing,
    )
    return Purchase(payouts, legs, list(dict.fromkeys(found)))


async def post(tx: asyncpg.Connection, p: PaymentDecisionPayload, purchase: Purchase) -> None:
    await postings.post(
        tx,
        kind="purchase",
        order_id=p.order_id,
        idempotency_key=f"purchase:{p.order_id}",
        currency=p.total.currency,
        legs=purchase.legs,
        defer=True,  # flushed in before_commit
    )
