"""The pure half of the interleavings property (tests/integration/test_callback_interleavings.py):
the model draws what it says it draws, and the rules it drives never drop money whatever
order answers come in."""

from hypothesis import given
from hypothesis import strategies as st

from contracts.money import Money
from tests.support.callback_interleavings import (
    SCENARIOS,
    Draw,
    Payment,
    Scenario,
    callbacks,
    draws,
    gateway_at,
)
from workers.gateway.port import Charge
from workers.late_payments import rules
from workers.sweeper.rules import after_query

STATUSES = ["requesting", "pending", "unknown", "succeeded", "failed", "manual_review", "expired"]
ORDER_STATES = [None, "payment_requested", "paid", "settled", "cancelled", "manual_review"]


@given(st.sampled_from(SCENARIOS).flatmap(lambda s: st.tuples(st.just(s), draws(s))))
def test_the_model_delivers_only_what_the_gateway_sent_and_ends_with_a_query(
    drawn: tuple[Scenario, Draw],
) -> None:
    scenario, run = drawn
    sent = callbacks(scenario)
    messages = run.messages
    assert messages[-1].kind == "query"
    payment = Payment("ord", "ord", "pay", {c: f"gw-{c}" for c, _ in scenario.timeline}, None)
    final = {(c.gateway_ref, c.status) for c in gateway_at(scenario, payment, messages[-1].at)}
    assert final == {(f"gw-{c}", s) for c, s in dict(scenario.timeline).items()}
    assert all(m in sent for m in messages if m.kind == "callback")  # copies of what was sent
    assert sum(m.kind == "settle" for m in messages) == (1 if scenario.expired else 0)


@given(
    st.sampled_from(STATUSES),
    st.sampled_from([None, "A", "B"]),
    st.sampled_from(ORDER_STATES),
    st.sampled_from(["A", "B", "C"]),
)
def test_a_success_not_seen_before_is_never_dropped(
    status: str, recorded: str | None, order_state: str | None, ref: str
) -> None:
    verdict = rules.payment_verdict(
        rules.PaymentState(status, recorded, order_state), True, ref, False
    )
    kept = recorded == ref and status in rules.DECIDED_SUCCESS
    assert (
        verdict == "duplicate" if kept else verdict in ("applied", "late_success", "second_charge")
    )
    if order_state in rules.ORDER_NOT_SOLD or status not in (
        *rules.OPEN_PAYMENT,
        *rules.DECIDED_SUCCESS,
    ):
        assert verdict != "applied"


@given(st.permutations(["succeeded", "failed", "pending", "succeeded"]), st.integers(1, 4))
def test_a_query_decides_the_same_whatever_order_the_gateway_lists_charges(
    statuses: list[str], n: int
) -> None:
    eur = Money(amount=500, currency="EUR")
    charges = [Charge(f"gw-{i}", "pay", s, eur) for i, s in enumerate(statuses[:n])]  # type: ignore[arg-type]
    plan = after_query(charges, 1, 0.0, 30.0, [1.0], window_left_s=600.0, resend_margin_s=1.0)
    final = [c for c in charges if c.status != "pending"]
    assert {x.gateway_ref for x in plan.notices} == {c.gateway_ref for c in final}
    if any(c.status == "succeeded" for c in final):
        assert plan.notices[0].status == "succeeded"  # an open payment with a success succeeds
