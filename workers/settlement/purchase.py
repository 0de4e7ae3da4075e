"""The purchase posting of a transaction: built from our own records, checked before anything
is confirmed (workers/settlement/checks.py), then posted. A transaction whose numbers do not
add up is never posted; settlement sends it to review instead."""

from dataclasses import dataclass

import asyncpg

from contracts.events.payments import PaymentDecisionPayload
from contracts.money import Money
from workers.ledger import accounts, postings
from workers.ledger.postings import Leg
from workers.runtime.errors import PermanentError
from workers.settlement import checks, prefetch
from workers.settlement.legs import Payout, purchase_legs


class Broken(Exception):
    """Settling this transaction would break an invariant our checks did not see coming."""


@dataclass(frozen=True)
class Purchase:
    payouts: list[tuple[Payout, str]]  # with each merchant's id
    legs: list[Leg]
    problems: list[str]  # empty: it may settle


async def verified(tx: asyncpg.Connection, p: PaymentDecisionPayload) -> PaymentDecisionPayload:
    """The decision as our own records make it: only a payment they say succeeded is
    confirmed, with the amounts they hold. Anything else (a forged or misrouted event)
    settles nothing and goes to the dead letters for an operator."""
    t, why = await prefetch.paid_transaction(tx, p)
    if t is None:
        raise PermanentError("unverified_decision", why)

    def m(amount: int) -> Money:
        return Money(amount=amount, currency=t["currency"])

    return p.model_copy(
        update={
            "buyer_id": t["buyer_id"],
            "total": m(t["total"]),
            "wallet_part": m(t["wallet_part"]),
            "gateway_part": m(t["gateway_part"]),
        }
    )


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


def posting(p: PaymentDecisionPayload, purchase: Purchase) -> postings.Posting:
    return postings.Posting(
        "purchase", p.order_id, f"purchase:{p.order_id}", p.total.currency, purchase.legs
    )


async def post(tx: asyncpg.Connection, p: PaymentDecisionPayload, purchase: Purchase) -> None:
    await postings.post_many(tx, [posting(p, purchase)], defer=True)  # flushed in before_commit
