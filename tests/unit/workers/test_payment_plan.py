"""How an order is paid (wallet part, gateway part) and the platform's fee."""

import gc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.fund_freeze.plan import (
    InsufficientWallet,
    PaymentPlan,
    Wanted,
    plan_batch,
    plan_payment,
    platform_fee,
)

_totals = st.integers(min_value=0, max_value=10**12)
_wallets = st.integers(min_value=-(10**6), max_value=10**12)


def test_gateway_only_never_touches_the_wallet() -> None:
    assert plan_payment("gateway_only", 5_000, 10**9) == PaymentPlan(0, 5_000)


def test_wallet_only_pays_everything_from_the_wallet() -> None:
    assert plan_payment("wallet_only", 5_000, 5_000) == PaymentPlan(5_000, 0)
    assert plan_payment("wallet_only", 5_000, 9_000) == PaymentPlan(5_000, 0)


def test_wallet_only_with_too_little_raises_insufficient_wallet() -> None:
    with pytest.raises(InsufficientWallet):
        plan_payment("wallet_only", 5_000, 4_999)


def test_wallet_first_uses_the_wallet_then_the_gateway() -> None:
    assert plan_payment("wallet_first", 5_000, 1_200) == PaymentPlan(1_200, 3_800)
    assert plan_payment("wallet_first", 5_000, 8_000) == PaymentPlan(5_000, 0)
    assert plan_payment("wallet_first", 5_000, 0) == PaymentPlan(0, 5_000)


def test_wallet_first_with_a_negative_wallet_pays_all_by_gateway() -> None:
    assert plan_payment("wallet_first", 5_000, -300) == PaymentPlan(0, 5_000)


@pytest.mark.parametrize("preference", ["", "WALLET_FIRST", "card", "wallet"])
def test_unknown_preference_raises_value_error(preference: str) -> None:
    with pytest.raises(ValueError):
        plan_payment(preference, 5_000, 5_000)


@given(
    preference=st.sampled_from(["wallet_first", "wallet_only", "gateway_only"]),
    total=_totals,
    available=_wallets,
)
def test_plan_parts_add_up_and_never_overdraw_the_wallet(
    preference: str, total: int, available: int
) -> None:
    try:
        plan = plan_payment(preference, total, available)
    except InsufficientWallet:
        assert preference == "wallet_only"
        assert available < total
        return
    assert isinstance(plan.wallet_part, int)
    assert isinstance(plan.gateway_part, int)
    assert plan.wallet_part + plan.gateway_part == total
    assert 0 <= plan.wallet_part <= max(available, 0)
    assert plan.gateway_part >= 0
    if preference == "wallet_only":
        assert plan.gateway_part == 0
    if preference == "gateway_only":
        assert plan.wallet_part == 0
    if preference == "wallet_first":
        assert plan.wallet_part == min(max(available, 0), total)


@given(total=_totals, available=_wallets)
def test_wallet_only_raises_exactly_when_the_wallet_is_short(total: int, available: int) -> None:
    if available >= total:
        assert plan_payment("wallet_only", total, available) == PaymentPlan(total, 0)
    else:
        with pytest.raises(InsufficientWallet):
            plan_payment("wallet_only", total, available)


def test_platform_fee_rounds_down() -> None:
    assert platform_fee(10_000, 60) == 60
    assert platform_fee(9_999, 60) == 59  # 59.994
    assert platform_fee(166, 60) == 0  # 0.996: a fraction of a minor unit is never taken
    assert platform_fee(0, 60) == 0


def test_platform_fee_of_zero_and_of_everything() -> None:
    assert platform_fee(12_345, 0) == 0
    assert platform_fee(12_345, 10_000) == 12_345


@given(amount=_totals, fee_bps=st.integers(min_value=0, max_value=10_000))
def test_platform_fee_is_rounded_down_and_never_exceeds_the_amount(
    amount: int, fee_bps: int
) -> None:
    fee = platform_fee(amount, fee_bps)
    assert isinstance(fee, int)
    assert 0 <= fee <= amount
    # rounded down: fee <= exact value < fee + 1, in integers
    assert fee * 10_000 <= amount * fee_bps < (fee + 1) * 10_000


def test_a_wallet_that_pays_for_one_order_has_that_much_less_for_the_next() -> None:
    plans = plan_batch(
        [
            Wanted("o1", "w", "wallet_first", 700),
            Wanted("o2", "w", "wallet_first", 700),
            Wanted("o3", "w", "wallet_only", 100),
            Wanted("o4", "v", "gateway_only", 500),
        ],
        {"w": 1_000, "v": 9_000},
    )
    assert plans["o1"] == PaymentPlan(700, 0)
    assert plans["o2"] == PaymentPlan(300, 400)
    assert isinstance(plans["o3"], InsufficientWallet)  # nothing left, nothing taken
    assert plans["o4"] == PaymentPlan(0, 500)


def test_an_order_refused_for_funds_leaves_the_wallet_to_the_next() -> None:
    plans = plan_batch(
        [Wanted("big", "w", "wallet_only", 2_000), Wanted("small", "w", "wallet_only", 900)],
        {"w": 1_000},
    )
    assert isinstance(plans["big"], InsufficientWallet)
    assert plans["small"] == PaymentPlan(900, 0)


def test_an_unknown_wallet_has_nothing() -> None:
    plans = plan_batch([Wanted("o", "new", "wallet_first", 50)], {})
    assert plans["o"] == PaymentPlan(0, 50)


def test_a_short_wallet_in_the_plans_keeps_no_frames_alive() -> None:
    """The refusal is kept for its answer without its traceback, whose frames (with the whole
    batch of the callers) would be a cycle only the garbage collector frees."""
    gc.collect()
    gc.disable()
    try:
        plans = plan_batch([Wanted("o-1", "w", "wallet_only", 100)], {"w": 5})
        short = plans["o-1"]
        assert isinstance(short, InsufficientWallet) and short.__traceback__ is None
        del plans, short
        assert gc.collect() == 0  # nothing was left in a reference cycle
    finally:
        gc.enable()
