"""Pure pricing rules: quantity tiers, coupon discounts and the exact split of a discount."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from workers.order_build.rules import (
    CatalogueItem,
    Coupon,
    Rejection,
    allocate,
    coupon_discount,
    unit_price,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _item(unit: int = 1_000, tiers: tuple[tuple[int, int], ...] = ()) -> CatalogueItem:
    return CatalogueItem("sku-1", "m-1", "w-1", "c-1", "EUR", unit, tiers)


def _coupon(kind: str, **fields: object) -> Coupon:
    base = Coupon(
        grant_id="g-1",
        code="CODE",
        kind=kind,
        currency="EUR",
        valid_from=NOW - timedelta(days=1),
        valid_until=NOW + timedelta(days=1),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


# --- unit_price -------------------------------------------------------------------------


def test_unit_price_without_tiers_is_the_base_price() -> None:
    assert unit_price(_item(1_000), 1) == 1_000
    assert unit_price(_item(1_000), 10_000) == 1_000


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [(1, 1_000), (4, 1_000), (5, 900), (9, 900), (10, 800), (10_000, 800)],
)
def test_unit_price_uses_the_highest_tier_reached(quantity: int, expected: int) -> None:
    item = _item(1_000, tiers=((5, 900), (10, 800)))
    assert unit_price(item, quantity) == expected


@pytest.mark.parametrize(("quantity", "expected"), [(2, 1_000), (5, 900), (12, 800), (50, 700)])
def test_unit_price_with_unsorted_tiers_still_picks_the_highest_reached(
    quantity: int, expected: int
) -> None:
    item = _item(1_000, tiers=((50, 700), (5, 900), (10, 800)))
    assert unit_price(item, quantity) == expected


# --- coupon_discount: full_reduction ------------------------------------------------------


def test_full_reduction_applies_when_the_threshold_is_met_exactly() -> None:
    coupon = _coupon("full_reduction", threshold=5_000, reduction=500)
    assert coupon_discount(coupon, 5_000, NOW) == 500
    assert coupon_discount(coupon, 9_999, NOW) == 500


def test_full_reduction_below_the_threshold_is_rejected() -> None:
    coupon = _coupon("full_reduction", threshold=5_000, reduction=500)
    with pytest.raises(Rejection) as info:
        coupon_discount(coupon, 4_999, NOW)
    assert info.value.code == "coupon_threshold_not_met"
    assert "CODE" in info.value.detail


def test_full_reduction_never_exceeds_the_eligible_amount() -> None:
    coupon = _coupon("full_reduction", threshold=0, reduction=500)
    assert coupon_discount(coupon, 300, NOW) == 300


# --- coupon_discount: discount_rate -------------------------------------------------------


def test_discount_rate_without_cap_is_rounded_down() -> None:
    coupon = _coupon("discount_rate", rate_bps=1_000)  # 10 %
    assert coupon_discount(coupon, 12_345, NOW) == 1_234
    assert coupon_discount(coupon, 9, NOW) == 0


def test_discount_rate_is_capped_by_max_discount() -> None:
    coupon = _coupon("discount_rate", rate_bps=2_000, max_discount=1_500)
    assert coupon_discount(coupon, 5_000, NOW) == 1_000  # under the cap
    assert coupon_discount(coupon, 100_000, NOW) == 1_500  # 20 000 capped


def test_discount_rate_of_a_hundred_percent_is_the_whole_amount() -> None:
    coupon = _coupon("discount_rate", rate_bps=10_000)
    assert coupon_discount(coupon, 4_321, NOW) == 4_321


# --- coupon_discount: ladder --------------------------------------------------------------

LADDER = ((2_000, 200), (5_000, 700), (10_000, 1_500))


@pytest.mark.parametrize(
    ("eligible", "expected"),
    [(2_000, 200), (4_999, 200), (5_000, 700), (9_999, 700), (10_000, 1_500), (99_999, 1_500)],
)
def test_ladder_picks_the_highest_step_reached(eligible: int, expected: int) -> None:
    assert coupon_discount(_coupon("ladder", ladder=LADDER), eligible, NOW) == expected


def test_ladder_steps_may_be_listed_in_any_order() -> None:
    coupon = _coupon("ladder", ladder=tuple(reversed(LADDER)))
    assert coupon_discount(coupon, 6_000, NOW) == 700


def test_ladder_with_no_step_reached_is_rejected() -> None:
    with pytest.raises(Rejection) as info:
        coupon_discount(_coupon("ladder", ladder=LADDER), 1_999, NOW)
    assert info.value.code == "coupon_threshold_not_met"


def test_ladder_with_no_steps_is_rejected() -> None:
    with pytest.raises(Rejection) as info:
        coupon_discount(_coupon("ladder", ladder=()), 10_000, NOW)
    assert info.value.code == "coupon_threshold_not_met"


def test_ladder_applies_the_highest_reached_step_even_if_a_lower_step_reduces_more() -> None:
    coupon = _coupon("ladder", ladder=((1_000, 500), (2_000, 300)))
    assert coupon_discount(coupon, 2_500, NOW) == 300


def test_unknown_coupon_kind_is_rejected() -> None:
    with pytest.raises(Rejection) as info:
        coupon_discount(_coupon("buy_one_get_one"), 1_000, NOW)
    assert info.value.code == "coupon_unknown_kind"


# --- coupon_discount: validity window -----------------------------------------------------


def test_coupon_is_valid_from_valid_from_inclusive() -> None:
    coupon = _coupon("full_reduction", reduction=100, valid_from=NOW)
    assert coupon_discount(coupon, 1_000, NOW) == 100


def test_coupon_is_expired_exactly_at_valid_until() -> None:
    coupon = _coupon("full_reduction", reduction=100, valid_until=NOW)
    with pytest.raises(Rejection) as info:
        coupon_discount(coupon, 1_000, NOW)
    assert info.value.code == "coupon_expired"


def test_coupon_is_still_valid_just_before_valid_until() -> None:
    coupon = _coupon("full_reduction", reduction=100, valid_until=NOW + timedelta(microseconds=1))
    assert coupon_discount(coupon, 1_000, NOW) == 100


def test_coupon_before_valid_from_is_rejected_as_expired() -> None:
    coupon = _coupon("full_reduction", reduction=100, valid_from=NOW + timedelta(seconds=1))
    with pytest.raises(Rejection) as info:
        coupon_discount(coupon, 1_000, NOW)
    assert info.value.code == "coupon_expired"


def test_validity_is_checked_before_the_threshold() -> None:
    coupon = _coupon("full_reduction", threshold=10**9, reduction=100, valid_until=NOW)
    with pytest.raises(Rejection) as info:
        coupon_discount(coupon, 1, NOW)
    assert info.value.code == "coupon_expired"


_amounts = st.integers(min_value=0, max_value=10**12)
_coupons = st.one_of(
    st.builds(
        lambda thr, red: _coupon("full_reduction", threshold=thr, reduction=red),
        st.integers(0, 10**6),
        st.integers(0, 10**9),
    ),
    st.builds(
        lambda rate, cap: _coupon("discount_rate", rate_bps=rate, max_discount=cap),
        st.integers(0, 10_000),
        st.none() | st.integers(0, 10**9),
    ),
    st.builds(
        lambda steps: _coupon("ladder", ladder=tuple(steps)),
        st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**9)), min_size=1),
    ),
)


@given(coupon=_coupons, eligible=_amounts)
def test_discount_is_an_int_between_zero_and_the_eligible_amount(
    coupon: Coupon, eligible: int
) -> None:
    try:
        discount = coupon_discount(coupon, eligible, NOW)
    except Rejection as exc:
        assert exc.code == "coupon_threshold_not_met"
        return
    assert isinstance(discount, int)
    assert 0 <= discount <= eligible


# --- allocate -----------------------------------------------------------------------------


def test_allocate_splits_in_proportion() -> None:
    assert allocate(300, [100, 200]) == [100, 200]
    assert allocate(30, [100, 200]) == [10, 20]


def test_allocate_gives_leftover_units_to_the_largest_remainders() -> None:
    assert allocate(10, [3, 3, 6]) == [3, 2, 5]  # 2.5, 2.5, 5: the tie goes to the earliest
    assert allocate(2, [1, 1, 1]) == [1, 1, 0]
    assert allocate(5, [10, 35, 55]) == [0, 2, 3]  # remainders 0.5, 1.75 -> 2, 2.75 -> 3


def test_allocate_zero_gives_zero_shares() -> None:
    assert allocate(0, [5, 0, 7]) == [0, 0, 0]


def test_allocate_more_than_the_weights_raises() -> None:
    with pytest.raises(ValueError):
        allocate(13, [5, 7])


@pytest.mark.parametrize("weights", [[0, 0], []])
def test_allocate_a_positive_amount_over_zero_weights_raises(weights: list[int]) -> None:
    with pytest.raises(ValueError):
        allocate(5, weights)


_weights = st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=12)


@st.composite
def _amount_and_weights(draw: st.DrawFn) -> tuple[int, list[int]]:
    weights = draw(_weights.filter(lambda ws: sum(ws) > 0))
    amount = draw(st.integers(min_value=0, max_value=sum(weights)))
    return amount, weights


@given(_amount_and_weights())
def test_allocate_shares_sum_exactly_to_the_amount(case: tuple[int, list[int]]) -> None:
    amount, weights = case
    shares = allocate(amount, weights)
    assert len(shares) == len(weights)
    assert all(isinstance(s, int) for s in shares)
    assert sum(shares) == amount


@given(_amount_and_weights())
def test_allocate_no_share_exceeds_its_weight(case: tuple[int, list[int]]) -> None:
    amount, weights = case
    for share, weight in zip(allocate(amount, weights), weights, strict=True):
        assert 0 <= share <= weight


@given(_amount_and_weights())
def test_allocate_each_share_is_within_one_of_its_exact_proportion(
    case: tuple[int, list[int]],
) -> None:
    amount, weights = case
    total = sum(weights)
    for share, weight in zip(allocate(amount, weights), weights, strict=True):
        # |share - amount * weight / total| < 1, in integers
        assert abs(share * total - amount * weight) < total


@given(_amount_and_weights())
def test_allocate_gives_nothing_to_zero_weights(case: tuple[int, list[int]]) -> None:
    amount, weights = case
    for share, weight in zip(allocate(amount, weights), weights, strict=True):
        if weight == 0:
            assert share == 0


@given(weights=_weights, extra=st.integers(min_value=1, max_value=10**9))
def test_allocate_more_than_the_total_weight_raises(weights: list[int], extra: int) -> None:
    assume(sum(weights) > 0)
    with pytest.raises(ValueError):
        allocate(sum(weights) + extra, weights)
