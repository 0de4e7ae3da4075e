"""Deterministic outcome rules, keyed on the amount's minor units (documented in __init__)."""

from dataclasses import dataclass
from typing import Literal

CallbackStatus = Literal["succeeded", "failed"]

DECLINE_CENTS = 13
DUPLICATE_CENTS = 42
OVERREPORT_CENTS = 99


@dataclass(frozen=True)
class Outcome:
    status: CallbackStatus
    failure_reason: str | None = None
    deliveries: int = 1  # how many times the same callback is sent
    reported_delta: int = 0  # added to the charged amount in the callback (an anomaly)


def decide(amount_minor: int) -> Outcome:
    cents = amount_minor % 100
    if cents == DECLINE_CENTS:
        return Outcome("failed", failure_reason="card_declined")
    if cents == DUPLICATE_CENTS:
        return Outcome("succeeded", deliveries=2)
    if cents == OVERREPORT_CENTS:
        return Outcome("succeeded", reported_delta=1)
    return Outcome("succeeded")
