"""Pure rules: how much of a sub-order may still be refunded, and the legs of a refund.

A refund goes back to the buyer's wallet. It is never more than the buyer paid for the
sub-order (what a platform coupon covered was never the buyer's) net of earlier refunds.
The merchant gives back its share and the platform its fee on that share, rounded down,
so the legs sum exactly to the refund.
"""

from workers.ledger.postings import Leg


def refundable(gross: int, subsidy: int, already_refunded: int) -> int:
    return gross - subsidy - already_refunded


def refund_legs(
    *, wallet: str, clearing: str, merchant: str, fee_income: str, amount: int, gross: int, fee: int
) -> list[Leg]:
    if not 0 < amount <= gross:
        raise ValueError(f"refund {amount} outside 1..{gross}")
    fee_back = fee * amount // gross
    return [
        Leg(merchant, clearing, amount - fee_back, "refund:merchant"),
        Leg(fee_income, clearing, fee_back, "refund:fee"),
        Leg(clearing, wallet, amount, "refund:buyer"),
    ]
