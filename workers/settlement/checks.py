"""What must hold of one transaction before it settles, over plain data (issue 8): its
details add up to what the buyer paid, each detail to its fee and net, and the purchase's
legs move exactly the total in and each merchant's net and fee out, the clearing account
netting to zero. A transaction that fails any of these goes to review instead of settling:
money that does not add up is never posted."""

from collections import Counter

from workers.ledger.postings import Leg
from workers.settlement.legs import Payout


def problems(
    *,
    total: int,
    wallet_part: int,
    gateway_part: int,
    payouts: list[Payout],
    legs: list[Leg],
    clearing: str,
) -> list[str]:
    """Every rule the transaction breaks, as a sentence each; empty when it may settle."""
    found: list[str] = []
    if wallet_part + gateway_part != total:
        found.append(f"wallet {wallet_part} + gateway {gateway_part} is not the total {total}")
    if not payouts:
        found.append("the transaction has no details")
    paid = sum(p.amount - p.subsidy for p in payouts)
    if payouts and paid != total:
        found.append(f"the details add up to {paid} paid by the buyer, the total is {total}")
    for p in payouts:
        if min(p.amount, p.fee, p.subsidy) < 0 or p.fee > p.amount or p.subsidy > p.amount:
            found.append(
                f"detail {p.sub_order_id}: amount {p.amount}, fee {p.fee}, subsidy {p.subsidy}"
            )
    if any(leg.amount < 0 for leg in legs):
        found.append("a leg moves a negative amount")
    net: Counter[str] = Counter()
    for leg in legs:
        net[leg.credit] += leg.amount
        net[leg.debit] -= leg.amount
    if net[clearing] != 0:
        found.append(f"the clearing account nets to {net[clearing]}, not zero")
    paid_in = sum(leg.amount for leg in legs if leg.credit == clearing)
    owed = sum(p.amount for p in payouts)
    if legs and paid_in != owed:
        found.append(f"the legs bring in {paid_in}, the sub-orders are owed {owed}")
    for p in payouts:
        out = net[p.merchant_account]
        if out < p.net:
            found.append(f"merchant of {p.sub_order_id} is paid {out}, its net is {p.net}")
    return found
