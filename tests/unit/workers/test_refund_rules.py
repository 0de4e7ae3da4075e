"""Refund rules: what may still be refunded, and legs that sum exactly."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.settlement.refunds import refund_legs, refundable

ACCOUNTS = {
    "wallet": "buyer:b:wallet:EUR",
    "clearing": "platform:payflow:order_clearing:EUR",
    "merchant": "merchant:m:payable:EUR",
    "fee_income": "platform:payflow:fee_income:EUR",
}


def test_refundable_is_what_the_buyer_paid_less_earlier_refunds() -> None:
    assert refundable(gross=3_000, subsidy=300, already_refunded=1_000) == 1_700


@given(
    st.integers(1, 10**9).flatmap(
        lambda gross: st.tuples(st.just(gross), st.integers(0, gross), st.integers(1, gross))
    )
)
def test_legs_sum_exactly_and_return_at_most_the_fee(case: tuple[int, int, int]) -> None:
    gross, fee, amount = case
    legs = {leg.name: leg for leg in refund_legs(**ACCOUNTS, amount=amount, gross=gross, fee=fee)}
    back = legs["refund:merchant"].amount + legs["refund:fee"].amount
    assert back == legs["refund:buyer"].amount == amount
    assert 0 <= legs["refund:fee"].amount <= fee
    assert legs["refund:buyer"].credit == ACCOUNTS["wallet"]


@pytest.mark.parametrize("amount", [0, 3_001])
def test_a_refund_outside_the_sub_order_raises(amount: int) -> None:
    with pytest.raises(ValueError):
        refund_legs(**ACCOUNTS, amount=amount, gross=3_000, fee=18)
