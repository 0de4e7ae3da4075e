"""What must hold of a transaction before it settles: a clean purchase has no problem, and
each way the numbers can fail to add up is named."""

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from workers.ledger.postings import Leg
from workers.settlement.checks import problems
from workers.settlement.legs import Payout, purchase_legs

CLEARING = "platform:payflow:order_clearing:EUR"
ACCOUNTS = {
    "wallet": "buyer:b-1:wallet:EUR",
    "gateway_clearing": "external:world:gateway_clearing:EUR",
    "clearing": CLEARING,
    "fee_income": "platform:payflow:fee_income:EUR",
}
PAYOUTS = [
    Payout("o-1-1", "merchant:m-a:payable:EUR", 3_000, 18),
    Payout("o-1-2", "merchant:m-b:payable:EUR", 2_000, 12),
]


def check(
    total: int, wallet: int, gateway: int, payouts: list[Payout], legs: list[Leg]
) -> list[str]:
    return problems(
        total=total,
        wallet_part=wallet,
        gateway_part=gateway,
        payouts=payouts,
        legs=legs,
        clearing=CLEARING,
    )


@given(
    st.lists(st.tuples(st.integers(1, 10**7), st.integers(0, 1_000)), min_size=1, max_size=5),
    st.data(),
)
def test_every_purchase_the_legs_rule_builds_passes(
    lines: list[tuple[int, int]], data: st.DataObject
) -> None:
    payouts = [
        Payout(f"o-{i}", f"merchant:m-{i}:payable:EUR", amount, amount * bps // 10_000)
        for i, (amount, bps) in enumerate(lines)
    ]
    total = sum(p.amount for p in payouts)
    wallet = data.draw(st.integers(0, total))
    legs = purchase_legs(
        **ACCOUNTS, wallet_part=wallet, gateway_part=total - wallet, payouts=payouts
    )
    assert check(total, wallet, total - wallet, payouts, legs) == []


def test_details_that_do_not_add_up_are_named() -> None:
    legs = purchase_legs(**ACCOUNTS, wallet_part=1_000, gateway_part=4_000, payouts=PAYOUTS)
    short = [PAYOUTS[0], replace(PAYOUTS[1], amount=1_999)]
    assert "the details add up to 4999 paid by the buyer, the total is 5000" in check(
        5_000, 1_000, 4_000, short, legs
    )
    assert "wallet 1000 + gateway 3000 is not the total 5000" in check(
        5_000, 1_000, 3_000, PAYOUTS, legs
    )
    assert check(5_000, 1_000, 4_000, [], []) == ["the transaction has no details"]


def test_legs_that_shortchange_a_merchant_or_leave_clearing_unbalanced_are_named() -> None:
    legs = purchase_legs(**ACCOUNTS, wallet_part=1_000, gateway_part=4_000, payouts=PAYOUTS)
    skimmed = [
        replace(leg, amount=leg.amount - 1) if leg.name == "merchant:o-1-1" else leg for leg in legs
    ]
    found = check(5_000, 1_000, 4_000, PAYOUTS, skimmed)
    assert any("clearing account nets to 1" in p for p in found)
    assert any("merchant of o-1-1 is paid 2981" in p for p in found)
