"""The outcome rules: chosen by the amount's minor units modulo 100."""

import pytest

from workers.gateway_simulator.rules import Outcome, decide


@pytest.mark.parametrize("amount", [13, 113, 2_013, 10**15 - 87])
def test_13_is_declined(amount: int) -> None:
    assert decide(amount) == Outcome("failed", failure_reason="card_declined")


@pytest.mark.parametrize("amount", [42, 142, 99_942])
def test_42_is_delivered_twice(amount: int) -> None:
    outcome = decide(amount)
    assert outcome.status == "succeeded"
    assert outcome.deliveries == 2
    assert outcome.reported_delta == 0


@pytest.mark.parametrize("amount", [99, 199, 10**15 - 1])
def test_99_over_reports_by_one(amount: int) -> None:
    outcome = decide(amount)
    assert outcome.status == "succeeded"
    assert outcome.reported_delta == 1
    assert outcome.deliveries == 1


def test_every_other_remainder_simply_succeeds() -> None:
    for cents in set(range(100)) - {13, 42, 99}:
        for amount in (cents, 100 + cents, 12_300 + cents):
            assert decide(amount) == Outcome("succeeded"), amount


def test_rules_are_deterministic() -> None:
    assert all(decide(a) == decide(a) for a in range(1_000))
