"""The ledger legs of a purchase: balanced, clearing nets to zero, merchants get their net."""

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.ledger.postings import Leg
from workers.settlement.legs import Payout, purchase_legs

ACCOUNTS = {
    "wallet": "buyer:b-1:wallet:EUR",
    "gateway_clearing": "external:world:gateway_clearing:EUR",
    "clearing": "platform:payflow:order_clearing:EUR",
    "fee_income": "platform:payflow:fee_income:EUR",
}


def _legs(wallet_part: int, gateway_part: int, payouts: list[Payout]) -> list[Leg]:
    return purchase_legs(
        **ACCOUNTS, wallet_part=wallet_part, gateway_part=gateway_part, payouts=payouts
    )


def _net_by_account(legs: list[Leg]) -> Counter[str]:
    """Credits minus debits per account."""
    net: Counter[str] = Counter()
    for leg in legs:
        net[leg.credit] += leg.amount
        net[leg.debit] -= leg.amount
    return net


def test_purchase_legs_for_a_split_payment() -> None:
    payouts = [
        Payout("o-1-1", "merchant:m-a:payable:EUR", 3_000, 18),
        Payout("o-1-2", "merchant:m-b:payable:EUR", 2_000, 12),
    ]
    legs = _legs(1_500, 3_500, payouts)
    clearing, fee_income = ACCOUNTS["clearing"], ACCOUNTS["fee_income"]
    assert legs == [
        Leg(ACCOUNTS["wallet"], clearing, 1_500, "wallet_part", debit_frozen=True),
        Leg(ACCOUNTS["gateway_clearing"], clearing, 3_500, "gateway_part"),
        Leg(clearing, "merchant:m-a:payable:EUR", 2_982, "merchant:o-1-1"),
        Leg(clearing, fee_income, 18, "fee:o-1-1"),
        Leg(clearing, "merchant:m-b:payable:EUR", 1_988, "merchant:o-1-2"),
        Leg(clearing, fee_income, 12, "fee:o-1-2"),
    ]


def test_only_the_wallet_leg_debits_frozen_money() -> None:
    legs = _legs(100, 900, [Payout("o-1-1", "merchant:m-a:payable:EUR", 1_000, 6)])
    assert [leg.name for leg in legs if leg.debit_frozen] == ["wallet_part"]
    (wallet_leg,) = [leg for leg in legs if leg.debit == ACCOUNTS["wallet"]]
    assert wallet_leg.debit_frozen is True


@pytest.mark.parametrize(("wallet_part", "gateway_part"), [(0, 999), (500, 501), (1_000, 1)])
def test_payments_that_do_not_match_the_sub_orders_raise(
    wallet_part: int, gateway_part: int
) -> None:
    with pytest.raises(ValueError):
        _legs(wallet_part, gateway_part, [Payout("o-1-1", "merchant:m-a:payable:EUR", 1_000, 6)])


def test_payout_net_is_amount_minus_fee() -> None:
    assert Payout("o-1-1", "merchant:m-a:payable:EUR", 1_000, 6).net == 994


_MERCHANTS = [f"merchant:m-{i}:payable:EUR" for i in range(3)]


@st.composite
def _settlements(draw: st.DrawFn) -> tuple[int, int, list[Payout]]:
    payouts = []
    for n in range(draw(st.integers(min_value=1, max_value=6))):
        amount = draw(st.integers(min_value=0, max_value=10**9))
        fee = draw(st.integers(min_value=0, max_value=amount))
        payouts.append(Payout(f"o-1-{n + 1}", draw(st.sampled_from(_MERCHANTS)), amount, fee))
    total = sum(p.amount for p in payouts)
    wallet_part = draw(st.integers(min_value=0, max_value=total))
    return wallet_part, total - wallet_part, payouts


@given(_settlements())
def test_purchase_legs_balance_per_account(case: tuple[int, int, list[Payout]]) -> None:
    wallet_part, gateway_part, payouts = case
    legs = _legs(wallet_part, gateway_part, payouts)
    net = _net_by_account(legs)

    assert sum(net.values()) == 0
    assert net[ACCOUNTS["clearing"]] == 0
    assert net[ACCOUNTS["wallet"]] == -wallet_part
    assert net[ACCOUNTS["gateway_clearing"]] == -gateway_part
    assert net[ACCOUNTS["fee_income"]] == sum(p.fee for p in payouts)
    for merchant in _MERCHANTS:
        expected = sum(p.amount - p.fee for p in payouts if p.merchant_account == merchant)
        assert net[merchant] == expected
    for leg in legs:
        assert isinstance(leg.amount, int)
        assert leg.amount >= 0
        assert leg.debit_frozen == (leg.debit == ACCOUNTS["wallet"])


@given(_settlements(), st.integers(min_value=1, max_value=10**6), st.booleans())
def test_any_mismatch_between_paid_and_owed_raises(
    case: tuple[int, int, list[Payout]], delta: int, over: bool
) -> None:
    wallet_part, gateway_part, payouts = case
    gateway_part += delta if over else -delta
    with pytest.raises(ValueError):
        _legs(wallet_part, gateway_part, payouts)


def test_platform_coupon_subsidy_is_paid_by_the_subsidy_account() -> None:
    # The buyer paid 900 of a 1,000 sub-order; the platform's coupon covers the other 100.
    payouts = [Payout("o-1-1", "merchant:m-a:payable:EUR", 1_000, 6, subsidy=100)]
    legs = purchase_legs(
        **ACCOUNTS,
        coupon_subsidy="platform:payflow:coupon_subsidy:EUR",
        wallet_part=400,
        gateway_part=500,
        payouts=payouts,
    )
    subsidy = [leg for leg in legs if leg.name == "coupon_subsidy"]
    assert [(s.debit, s.amount) for s in subsidy] == [("platform:payflow:coupon_subsidy:EUR", 100)]
    assert sum(leg.amount for leg in legs if leg.credit == ACCOUNTS["clearing"]) == 1_000


def test_a_subsidy_without_its_account_raises() -> None:
    with pytest.raises(ValueError, match="coupon subsidy account"):
        _legs(400, 500, [Payout("o-1-1", "merchant:m-a:payable:EUR", 1_000, 6, subsidy=100)])
