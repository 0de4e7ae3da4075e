"""Refund rules: what may be given back, where each share goes, legs that sum exactly."""

from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.base import Refusal
from workers.refunds.rules import (
    Ask,
    Line,
    Paid,
    Plan,
    SubOrder,
    allocate,
    card_outcome_leg,
    card_share,
    plan,
    refund_legs,
)
from workers.refunds.store import card_refund_id

TEES = SubOrder("o-1", "m-acme", 3_000, 18, 0, 3_000, lines=(Line("sku-tee", 2, 3_000),))
NOVEL = SubOrder("o-2", "m-bolt", 2_500, 15, 500, 2_500, lines=(Line("sku-novel", 1, 2_500),))
# 3,000 + 2,000 paid by the buyer (the novel had a 500 platform subsidy): 1,000 by wallet.
PAID = Paid("settled", "EUR", 5_000, 4_000)


def ask(
    sub: str | None = None,
    amount: int | None = None,
    items: tuple[tuple[str, int], ...] = (),
    restock: bool = False,
    currency: str | None = "EUR",
) -> Ask:
    return Ask(sub, amount, currency if amount is not None else None, items, restock)


def ok(result: Plan | Refusal) -> Plan:
    assert isinstance(result, Plan), result
    return result


def refused(result: Plan | Refusal) -> str:
    assert isinstance(result, Refusal), result
    return result.code


def test_a_whole_order_refund_gives_back_everything_in_the_payment_proportions() -> None:
    p = ok(plan(PAID, [TEES, NOVEL], ask()))
    assert p.amount == 5_000
    assert (p.to_wallet, p.to_card) == (1_000, 4_000)
    assert [(x.sub_order_id, x.amount) for x in p.parts] == [("o-1", 3_000), ("o-2", 2_000)]


def test_a_sub_order_refund_is_bounded_by_what_the_buyer_paid_for_it() -> None:
    assert ok(plan(PAID, [TEES, NOVEL], ask("o-2"))).amount == 2_000  # not the 500 subsidy
    assert refused(plan(PAID, [TEES, NOVEL], ask("o-2", 2_001))) == "exceeds_captured"
    earlier = SubOrder("o-1", "m-acme", 3_000, 18, 0, 3_000, refunded=2_500)
    assert refused(plan(PAID, [earlier, NOVEL], ask("o-1", 501))) == "exceeds_captured"


def test_items_are_refunded_at_their_share_and_never_more_than_bought() -> None:
    p = ok(plan(PAID, [TEES, NOVEL], ask("o-1", items=(("sku-tee", 1),), restock=True)))
    assert p.amount == 1_500 and p.restock
    assert [(r.sku_id, r.quantity) for r in p.returned] == [("sku-tee", 1)]
    given_back = SubOrder(
        "o-1", "m-acme", 3_000, 18, 0, 3_000, 1_500, (Line("sku-tee", 2, 3_000, returned=1),)
    )
    over = ask("o-1", items=(("sku-tee", 2),))
    assert refused(plan(PAID, [given_back, NOVEL], over)) == "exceeds_quantity"
    worth = ask("o-1", 1_501, items=(("sku-tee", 1),))
    assert refused(plan(PAID, [TEES, NOVEL], worth)) == "exceeds_items_value"
    assert refused(plan(PAID, [TEES, NOVEL], ask(items=(("sku-tee", 1),)))) == (
        "items_need_sub_order"
    )
    assert refused(plan(PAID, [TEES, NOVEL], ask("o-1", items=(("sku-x", 1),)))) == "unknown_item"


def test_restock_without_items_returns_every_item_not_given_back() -> None:
    p = ok(plan(PAID, [TEES, NOVEL], ask(restock=True)))
    assert {(r.sku_id, r.quantity) for r in p.returned} == {("sku-tee", 2), ("sku-novel", 1)}


@pytest.mark.parametrize(
    ("paid", "asked", "code"),
    [
        (Paid("cancelled", "EUR", 5_000, 4_000), ask(), "order_not_settled"),
        (PAID, ask(amount=100, currency="USD"), "currency_mismatch"),
        (PAID, ask("o-9"), "unknown_sub_order"),
        (PAID, ask(amount=0), "nothing_to_refund"),
    ],
)
def test_refusals(paid: Paid, asked: Ask, code: str) -> None:
    assert refused(plan(paid, [TEES, NOVEL], asked)) == code


def test_nothing_is_left_after_a_full_refund() -> None:
    done = [
        SubOrder("o-1", "m-acme", 3_000, 18, 0, 3_000, refunded=3_000),
        SubOrder("o-2", "m-bolt", 2_500, 15, 500, 2_500, refunded=2_000),
    ]
    paid = Paid("settled", "EUR", 5_000, 4_000, refunded=5_000, card_refunded=4_000)
    assert refused(plan(paid, done, ask())) == "nothing_to_refund"


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=6), st.data())
def test_allocation_is_exact_and_within_each_left(lefts: list[int], data: st.DataObject) -> None:
    total = sum(lefts)
    if total == 0:
        return
    amount = data.draw(st.integers(1, total))
    shares = allocate(amount, lefts)
    assert sum(shares) == amount
    assert all(0 <= s <= left for s, left in zip(shares, lefts, strict=True))


@given(
    st.integers(1, 10**7).flatmap(
        lambda total: st.tuples(
            st.just(total),
            st.integers(0, total),
            st.lists(st.integers(1, total), min_size=1, max_size=8),
        )
    )
)
def test_card_shares_of_successive_refunds_add_up_to_the_gateway_part(
    case: tuple[int, int, list[int]],
) -> None:
    """However an order is refunded in pieces, the card never gets back more than was
    captured, each share is within its refund, and a full refund returns it exactly."""
    total, gateway_part, pieces = case
    refunded = card = 0
    for piece in pieces:
        amount = min(piece, total - refunded)
        if amount == 0:
            break
        share = card_share(Paid("settled", "EUR", total, gateway_part, refunded, card), amount)
        assert 0 <= share <= amount
        refunded, card = refunded + amount, card + share
        assert card <= gateway_part
    last = total - refunded
    if last:
        card += card_share(Paid("settled", "EUR", total, gateway_part, refunded, card), last)
    assert card == gateway_part


@given(st.data())
def test_legs_balance_every_account_and_return_at_most_the_fee(data: st.DataObject) -> None:
    gross = data.draw(st.integers(1, 10**8))
    fee = data.draw(st.integers(0, gross))
    sub = SubOrder("o-1", "m", gross, fee, 0, gross)
    gateway_part = data.draw(st.integers(0, gross))
    amount = data.draw(st.integers(1, gross))
    p = ok(plan(Paid("settled", "EUR", gross, gateway_part), [sub], ask("o-1", amount)))
    legs = refund_legs(
        p, merchants={"m": "merchant"}, clearing="c", fee_income="f", wallet="w", card_refunds="r"
    )
    net: dict[str, int] = defaultdict(int)
    for leg in legs:
        net[leg.debit] -= leg.amount
        net[leg.credit] += leg.amount
    assert net["c"] == 0  # the clearing account nets to zero within the posting
    assert net["w"] + net["r"] == amount == -(net["merchant"] + net["f"])
    assert 0 <= -net["f"] <= fee


def test_the_card_outcome_leaves_through_the_gateway_or_goes_to_the_wallet() -> None:
    sent = card_outcome_leg(
        succeeded=True, card_refunds="r", gateway_clearing="g", wallet="w", amount=7
    )
    fallback = card_outcome_leg(
        succeeded=False, card_refunds="r", gateway_clearing="g", wallet="w", amount=7
    )
    assert (sent.debit, sent.credit) == ("r", "g")
    assert (fallback.debit, fallback.credit) == ("r", "w")


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}", fullmatch=True))
def test_the_card_share_id_fits_the_gateway_and_differs_per_refund(refund_id: str) -> None:
    ours = card_refund_id(refund_id)
    assert len(ours) <= 64 and ours.startswith("order:")
    assert ours != card_refund_id(refund_id + "x") or len(refund_id) >= 64
