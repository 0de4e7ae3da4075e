"""Pure rules: the ledger legs of a purchase.

Everything paid (wallet part out of frozen money, gateway part from the gateway clearing
account, and the platform's coupon subsidy) goes into the order clearing account and
straight out again to each merchant (net) and to the platform's fee income, so the legs
always sum exactly and the clearing account nets to zero within the posting.
"""

from dataclasses import dataclass

from workers.ledger.postings import Leg


@dataclass(frozen=True)
class Payout:
    sub_order_id: str
    merchant_account: str
    amount: int  # gross: what the buyer paid for the sub-order plus the coupon subsidy
    fee: int
    subsidy: int = 0

    @property
    def net(self) -> int:
        return self.amount - self.fee


def purchase_legs(
    *,
    wallet: str,
    gateway_clearing: str,
    clearing: str,
    fee_income: str,
    coupon_subsidy: str | None = None,
    wallet_part: int,
    gateway_part: int,
    payouts: list[Payout],
) -> list[Leg]:
    subsidy = sum(p.subsidy for p in payouts)
    if subsidy and not coupon_subsidy:
        raise ValueError("a subsidised purchase needs the coupon subsidy account")
    paid = wallet_part + gateway_part + subsidy
    owed = sum(p.amount for p in payouts)
    if paid != owed:
        raise ValueError(f"payments {paid} do not cover the sub-orders {owed}")
    legs = [
        Leg(wallet, clearing, wallet_part, "wallet_part", debit_frozen=True),
        Leg(gateway_clearing, clearing, gateway_part, "gateway_part"),
    ]
    if coupon_subsidy and subsidy:
        legs.append(Leg(coupon_subsidy, clearing, subsidy, "coupon_subsidy"))
    for p in payouts:
        legs.append(Leg(clearing, p.merchant_account, p.net, f"merchant:{p.sub_order_id}"))
        legs.append(Leg(clearing, fee_income, p.fee, f"fee:{p.sub_order_id}"))
    return legs
