"""Fault names and rates, and the per-payment, seeded selection."""

import pytest

from workers.gateway_simulator.faults import FAULTS, Faults, parse_fault_list, parse_faults


def test_parse_names_and_rates() -> None:
    assert parse_faults(["late_callback=0.2", "latency=1"]) == {
        "late_callback": 0.2,
        "latency": 1.0,
    }
    assert parse_fault_list("lost_callback=0, wrong_amount=0.5,") == {
        "lost_callback": 0.0,
        "wrong_amount": 0.5,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope=0.1", "unknown fault 'nope'"),
        ("latency", "not NAME=RATE"),
        ("latency=1.5", "not a number in \\[0, 1\\]"),
        ("latency=-0.1", "not a number in \\[0, 1\\]"),
        ("latency=nan", "not a number in \\[0, 1\\]"),
        ("latency=fast", "not a number in \\[0, 1\\]"),
    ],
)
def test_bad_faults_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_faults([text])


def test_selection_is_per_payment_and_reproducible() -> None:
    faults = Faults({"late_callback": 0.5}, seed=7)
    ids = [f"pay-{n}" for n in range(400)]
    first = [faults.hits("late_callback", p) for p in ids]
    assert first == [faults.hits("late_callback", p) for p in reversed(ids)][::-1]
    assert first == [Faults({"late_callback": 0.5}, seed=7).hits("late_callback", p) for p in ids]
    assert 120 < sum(first) < 280  # about half
    other_seed = [Faults({"late_callback": 0.5}, seed=8).hits("late_callback", p) for p in ids]
    assert other_seed != first
    # Each fault draws on its own: the same payment is not hit by all of them together.
    both = Faults({"late_callback": 0.5, "lost_callback": 0.5}, seed=7)
    assert [both.hits("lost_callback", p) for p in ids] != first


def test_rates_zero_and_one() -> None:
    always = Faults(dict.fromkeys(FAULTS, 1.0))
    never = Faults({})
    for name in FAULTS:
        assert always.hits(name, "pay-1") and not never.hits(name, "pay-1")
    with pytest.raises(KeyError):
        never.hits("nope", "pay-1")
