"""How often and how long gateway_request asks the gateway before a payment is unknown."""

from datetime import UTC, datetime, timedelta

from contracts.money import Money
from workers.gateway.port import Exchange
from workers.payments import rules


def test_backoff_is_short_doubling_and_capped() -> None:
    assert [rules.backoff_s(n) for n in (1, 2, 3, 10)] == [0.2, 0.4, 0.8, 2.0]


def test_attempts_are_bounded_by_count_and_budget() -> None:
    assert rules.may_try_again(1, 3, elapsed_s=0, call_s=1, budget_s=15)
    assert not rules.may_try_again(3, 3, elapsed_s=0, call_s=1, budget_s=15)
    # A further call could not end within the budget: unknown now, the sweeper asks later.
    assert not rules.may_try_again(1, 3, elapsed_s=10, call_s=10, budget_s=15)
    assert rules.call_budget_s(30) == 15


def test_evidence_keeps_the_exchange() -> None:
    seen = rules.evidence_of(Exchange("POST /v1/payments", 503, "busy"), "answered 503")
    assert seen == {
        "note": "answered 503",
        "request": "POST /v1/payments",
        "status": 503,
        "response": "busy",
    }
    assert rules.evidence_of(None, "no answer") == {"note": "no answer"}


def test_first_check() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert rules.first_check_at(now, "unknown", 60, [0.5, 1]) == now + timedelta(seconds=0.5)
    assert rules.first_check_at(now, "accepted", 60, [0.5, 1]) == now + timedelta(seconds=60)


def test_a_charge_is_built_the_same_for_the_first_send_and_a_re_send() -> None:
    eur = Money(amount=1500, currency="EUR")
    first = rules.charge_request("tx-1-p1", "ord-1", eur)
    assert first.idempotency_key == rules.idempotency_key_for("tx-1-p1") == "payflow:tx-1-p1"
    assert (first.order_id, first.amount, first.description) == ("ord-1", eur, "order ord-1")
    # The sweeper re-sends from the record, with the key recorded then: the same request.
    assert rules.charge_request("tx-1-p1", "ord-1", eur, "payflow:tx-1-p1") == first
    # A top-up's reference is its wallet operation.
    assert rules.charge_request("top-1-p1", "top-1", eur).description == "order top-1"
