"""Pricing an order: lines, coupons and the split into sub-orders per (merchant, warehouse)."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.order_build.pricing import PricedOrder, price_order
from workers.order_build.rules import CatalogueItem, Coupon, Rejection

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

CATALOGUE = {
    "a-1": CatalogueItem("a-1", "m-b", "w-2", "c", "EUR", 1_000),
    "a-2": CatalogueItem("a-2", "m-b", "w-1", "c", "EUR", 500),
    "b-1": CatalogueItem("b-1", "m-a", "w-9", "c", "EUR", 2_000, tiers=((3, 1_500),)),
    "b-2": CatalogueItem("b-2", "m-a", "w-9", "c", "EUR", 250),
    "usd": CatalogueItem("usd", "m-a", "w-9", "c", "USD", 100),
}


def _coupon(kind: str = "full_reduction", **fields: object) -> Coupon:
    base = Coupon(
        grant_id="g-1",
        code="CODE",
        kind=kind,
        currency="EUR",
        valid_from=NOW - timedelta(days=1),
        valid_until=NOW + timedelta(days=1),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def _price(quantities: dict[str, int], coupons: list[Coupon] | None = None) -> PricedOrder:
    return price_order("o-1", "EUR", quantities, CATALOGUE, coupons or [], NOW)


def test_order_is_split_per_merchant_and_warehouse_in_sorted_key_order() -> None:
    order = _price({"a-1": 1, "a-2": 2, "b-1": 1, "b-2": 4})
    assert [(p.sub_order_id, p.merchant_id, p.warehouse_id) for p in order.parts] == [
        ("o-1-1", "m-a", "w-9"),
        ("o-1-2", "m-b", "w-1"),
        ("o-1-3", "m-b", "w-2"),
    ]
    assert [[line.sku_id for line in p.lines] for p in order.parts] == [
        ["b-1", "b-2"],
        ["a-2"],
        ["a-1"],
    ]


def test_sub_order_ids_do_not_depend_on_the_order_of_the_cart() -> None:
    forward = _price({"a-1": 1, "b-1": 1, "a-2": 1})
    backward = _price({"a-2": 1, "b-1": 1, "a-1": 1})
    assert forward == backward


def test_lines_use_tier_prices_and_totals_add_up() -> None:
    order = _price({"b-1": 3, "b-2": 2})
    (part,) = order.parts
    assert [(line.sku_id, line.quantity, line.unit_price, line.total) for line in part.lines] == [
        ("b-1", 3, 1_500, 4_500),
        ("b-2", 2, 250, 500),
    ]
    assert (part.subtotal, part.discount, part.amount) == (5_000, 0, 5_000)
    assert (order.subtotal, order.discount, order.total) == (5_000, 0, 5_000)
    assert order.currency == "EUR"
    assert order.grant_ids == ()


def test_unknown_sku_is_rejected() -> None:
    with pytest.raises(Rejection) as info:
        _price({"a-1": 1, "nope": 1})
    assert info.value.code == "unknown_sku"
    assert "nope" in info.value.detail


def test_sku_in_another_currency_is_rejected() -> None:
    with pytest.raises(Rejection) as info:
        _price({"a-1": 1, "usd": 1})
    assert info.value.code == "currency_mismatch"


def test_platform_coupon_is_split_over_all_parts_in_proportion() -> None:
    order = _price({"a-1": 3, "b-2": 4}, [_coupon(reduction=400)])  # 3000 and 1000
    assert [p.discount for p in order.parts] == [100, 300]  # m-a first, then m-b
    assert order.discount == 400
    assert order.total == 3_600
    assert order.grant_ids == ("g-1",)


def test_merchant_coupon_only_discounts_that_merchants_parts() -> None:
    coupon = _coupon(reduction=300, merchant_id="m-b")
    order = _price({"a-1": 1, "a-2": 4, "b-1": 1}, [coupon])  # m-b: 1000 (w-2) + 2000 (w-1)
    discounts = {p.sub_order_id: (p.merchant_id, p.discount) for p in order.parts}
    assert discounts == {"o-1-1": ("m-a", 0), "o-1-2": ("m-b", 200), "o-1-3": ("m-b", 100)}


def test_merchant_coupon_threshold_counts_only_that_merchants_parts() -> None:
    coupon = _coupon(threshold=2_000, reduction=300, merchant_id="m-b")
    with pytest.raises(Rejection) as info:
        _price({"a-1": 1, "b-1": 5}, [coupon])  # m-b 1000, m-a 7500
    assert info.value.code == "coupon_threshold_not_met"


def test_coupon_for_a_merchant_not_in_the_order_is_not_applicable() -> None:
    with pytest.raises(Rejection) as info:
        _price({"a-1": 1}, [_coupon(reduction=100, merchant_id="m-zzz")])
    assert info.value.code == "coupon_not_applicable"


def test_coupon_in_another_currency_is_rejected() -> None:
    with pytest.raises(Rejection) as info:
        _price({"a-1": 1}, [_coupon(reduction=100, currency="USD")])
    assert info.value.code == "coupon_currency_mismatch"


def test_expired_coupon_is_rejected() -> None:
    with pytest.raises(Rejection) as info:
        _price({"a-1": 1}, [_coupon(reduction=100, valid_until=NOW)])
    assert info.value.code == "coupon_expired"


def test_two_coupons_apply_one_after_the_other_on_what_remains() -> None:
    first = _coupon(reduction=1_000, grant_id="g-1")
    # 10 % of what remains after the first (4000 - 1000 = 3000), not of the subtotal
    second = _coupon("discount_rate", rate_bps=1_000, grant_id="g-2", code="TEN")
    order = _price({"a-1": 2, "b-2": 8}, [first, second])  # 2000 + 2000
    assert order.discount == 1_000 + 300
    assert [p.discount for p in order.parts] == [650, 650]
    assert order.total == 2_700
    assert order.grant_ids == ("g-1", "g-2")


def test_second_coupon_threshold_is_checked_against_what_remains() -> None:
    first = _coupon(reduction=500, grant_id="g-1")
    second = _coupon(threshold=1_000, reduction=100, grant_id="g-2")
    with pytest.raises(Rejection) as info:
        _price({"a-1": 1}, [first, second])  # 1000 - 500 = 500 < 1000
    assert info.value.code == "coupon_threshold_not_met"


def test_discount_never_exceeds_the_order() -> None:
    order = _price({"a-2": 1}, [_coupon(reduction=10_000)])
    assert (order.subtotal, order.discount, order.total) == (500, 500, 0)


# --- properties ---------------------------------------------------------------------------

_MERCHANTS = ["m-1", "m-2", "m-3"]


@st.composite
def _catalogue(draw: st.DrawFn) -> dict[str, CatalogueItem]:
    n = draw(st.integers(min_value=1, max_value=8))
    items = {}
    for i in range(n):
        tiers = draw(
            st.lists(st.tuples(st.integers(1, 20), st.integers(0, 100_000)), max_size=3).map(tuple)
        )
        items[f"s-{i}"] = CatalogueItem(
            f"s-{i}",
            draw(st.sampled_from(_MERCHANTS)),
            draw(st.sampled_from(["w-1", "w-2"])),
            "c",
            "EUR",
            draw(st.integers(0, 100_000)),
            tiers,
        )
    return items


_coupons = st.one_of(
    st.builds(
        lambda thr, red, m: _coupon(threshold=thr, reduction=red, merchant_id=m),
        st.integers(0, 50_000),
        st.integers(0, 200_000),
        st.none() | st.sampled_from(_MERCHANTS),
    ),
    st.builds(
        lambda rate, cap, m: _coupon(
            "discount_rate", rate_bps=rate, max_discount=cap, merchant_id=m
        ),
        st.integers(0, 10_000),
        st.none() | st.integers(0, 100_000),
        st.none() | st.sampled_from(_MERCHANTS),
    ),
    st.builds(
        lambda steps, m: _coupon("ladder", ladder=tuple(steps), merchant_id=m),
        st.lists(st.tuples(st.integers(0, 50_000), st.integers(0, 200_000)), min_size=1),
        st.none() | st.sampled_from(_MERCHANTS),
    ),
)


@st.composite
def _orders(draw: st.DrawFn) -> tuple[dict[str, CatalogueItem], dict[str, int], list[Coupon]]:
    catalogue = draw(_catalogue())
    skus = draw(st.lists(st.sampled_from(sorted(catalogue)), min_size=1, unique=True))
    quantities = {sku: draw(st.integers(1, 10_000)) for sku in skus}
    coupons = draw(st.lists(_coupons, max_size=3))
    return catalogue, quantities, coupons


_EXPECTED_REJECTIONS = {"coupon_threshold_not_met", "coupon_not_applicable"}


@given(_orders())
def test_priced_order_amounts_are_consistent(
    case: tuple[dict[str, CatalogueItem], dict[str, int], list[Coupon]],
) -> None:
    catalogue, quantities, coupons = case
    try:
        order = price_order("o-9", "EUR", quantities, catalogue, coupons, NOW)
    except Rejection as exc:
        assert exc.code in _EXPECTED_REJECTIONS
        return
    assert order.total == order.subtotal - order.discount
    assert order.subtotal == sum(p.subtotal for p in order.parts)
    assert order.discount == sum(p.discount for p in order.parts)
    assert order.total == sum(p.amount for p in order.parts)
    lines = [line for p in order.parts for line in p.lines]
    assert {line.sku_id: line.quantity for line in lines} == quantities
    assert len(lines) == len(quantities)
    assert [p.sub_order_id for p in order.parts] == [
        f"o-9-{n}" for n in range(1, len(order.parts) + 1)
    ]
    keys = [(p.merchant_id, p.warehouse_id) for p in order.parts]
    assert keys == sorted(set(keys))
    for p in order.parts:
        for value in (p.subtotal, p.discount, p.amount):
            assert isinstance(value, int)
            assert value >= 0
        assert p.discount <= p.subtotal
    for value in (order.subtotal, order.discount, order.total):
        assert isinstance(value, int)
        assert value >= 0


@given(_orders())
def test_merchant_coupons_never_discount_other_merchants(
    case: tuple[dict[str, CatalogueItem], dict[str, int], list[Coupon]],
) -> None:
    catalogue, quantities, coupons = case
    scoped = [replace(c, merchant_id="m-1") for c in coupons]
    try:
        order = price_order("o-9", "EUR", quantities, catalogue, scoped, NOW)
    except Rejection as exc:
        assert exc.code in _EXPECTED_REJECTIONS
        return
    for p in order.parts:
        if p.merchant_id != "m-1":
            assert p.discount == 0


def test_platform_coupons_are_subsidised_and_merchant_coupons_are_not() -> None:
    platform = Coupon(
        "g1",
        "TENOFF",
        "discount_rate",
        "EUR",
        NOW - timedelta(days=1),
        NOW + timedelta(days=1),
        rate_bps=1_000,
    )
    own = Coupon(
        "g2",
        "ACME5",
        "full_reduction",
        "EUR",
        NOW - timedelta(days=1),
        NOW + timedelta(days=1),
        merchant_id="m-a",
        threshold=0,
        reduction=50,
    )
    catalogue = {
        "a": CatalogueItem("a", "m-a", "w-1", "c", "EUR", 1_000),
        "b": CatalogueItem("b", "m-b", "w-1", "c", "EUR", 1_000),
    }
    priced = price_order("o-1", "EUR", {"a": 1, "b": 1}, catalogue, [own, platform], NOW)
    by_merchant = {p.merchant_id: p for p in priced.parts}
    assert by_merchant["m-a"].discount == 50 + 95  # its own 50, then 10% of the 950 left
    assert by_merchant["m-a"].platform_discount == 95
    assert by_merchant["m-b"].discount == by_merchant["m-b"].platform_discount == 100
