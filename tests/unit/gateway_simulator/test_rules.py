"""Amount rules and the gateway fee."""

from workers.gateway_simulator.rules import Outcome, charge_fee, decide, payout_declined


def test_amount_rules_by_cents() -> None:
    assert decide(1_013) == Outcome("failed", failure_reason="card_declined")
    assert decide(1_042) == Outcome("succeeded", deliveries=2)
    assert decide(1_099) == Outcome("succeeded", reported_delta=1)
    assert decide(1_000) == Outcome("succeeded")
    assert payout_declined(513) and not payout_declined(500)


def test_fee_is_29_per_mille_plus_30_capped_at_the_amount() -> None:
    assert charge_fee(1_000) == 59
    assert charge_fee(10_000) == 320
    assert charge_fee(20) == 20  # never more than the charge
    assert charge_fee(31) == 30
