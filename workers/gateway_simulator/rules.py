"""The amount rules (tests and demos pick an outcome by the amount's last two digits) and
the gateway's fee."""

from dataclasses import dataclass
from typing import Literal

Settled = Literal["succeeded", "failed"]

DECLINE_CENTS = 13  # charge declined (card_declined); payout declined (account_closed)
DUPLICATE_CENTS = 42  # charge succeeds, its callback is delivered twice (same callback id)
OVERREPORT_CENTS = 99  # charge succeeds, its callback reports amount + 1 (an anomaly)

FEE_PER_MILLE = 29
FEE_FIXED = 30


@dataclass(frozen=True)
class Outcome:
    status: Settled
    failure_reason: str | None = None
    deliveries: int = 1  # how many times the same callback is sent
    reported_delta: int = 0  # added to the charged amount in the callback


def decide(amount_minor: int) -> Outcome:
    cents = amount_minor % 100
    if cents == DECLINE_CENTS:
        return Outcome("failed", failure_reason="card_declined")
    if cents == DUPLICATE_CENTS:
        return Outcome("succeeded", deliveries=2)
    if cents == OVERREPORT_CENTS:
        return Outcome("succeeded", reported_delta=1)
    return Outcome("succeeded")


def payout_declined(amount_minor: int) -> bool:
    return amount_minor % 100 == DECLINE_CENTS


def charge_fee(amount_minor: int) -> int:
    """2.9 % + 30 minor units, never more than the charge itself."""
    return min(amount_minor, amount_minor * FEE_PER_MILLE // 1000 + FEE_FIXED)
