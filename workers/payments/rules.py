"""The rules of asking the gateway for a charge, over plain data: how often, how long, and
when the sweeper first asks about the answer."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from contracts.money import Money
from workers.gateway.port import ChargeCreated, ChargeRequest, Exchange

FIRST_BACKOFF_S = 0.2
MAX_BACKOFF_S = 2.0


def idempotency_key_for(payment_id: str) -> str:
    # Derived from payment id + attempt: a retried request can never charge twice.
    return f"payflow:{payment_id}"


def charge_request(
    payment_id: str, reference: str, amount: Money, idempotency_key: str | None = None
) -> ChargeRequest:
    """The create call of one payment (an order's gateway part, or a top-up: `reference` is
    the order or wallet operation id). Built here for the first send and for every re-send
    (the sweeper's), from the same recorded values: the gateway replays a key only for the
    same parameters, so a re-send can never charge twice. `idempotency_key`: the one
    recorded with the payment, when it is re-sent."""
    return ChargeRequest(
        payment_id=payment_id,
        order_id=reference,
        amount=amount,
        idempotency_key=idempotency_key or idempotency_key_for(payment_id),
        description=f"order {reference}",
    )


def backoff_s(tried: int) -> float:
    """Pause after the `tried`-th unknown answer (1-based): short, doubling, capped."""
    return float(min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2.0 ** (tried - 1)))


def may_try_again(
    tried: int, attempts: int, elapsed_s: float, call_s: float, budget_s: float
) -> bool:
    """Another call with the same key, if attempts remain and one more call (and its pause)
    still ends within the budget: the stage must answer well inside the runtime's retry
    budget, so an outage makes the payment unknown instead of holding the partition."""
    if tried >= attempts:
        return False
    return elapsed_s + backoff_s(tried) + call_s <= budget_s


def call_budget_s(retry_budget_s: float) -> float:
    """How long all create calls of one payment may take together."""
    return retry_budget_s / 2


def evidence_of(exchange: Exchange | None, note: str) -> dict[str, object]:
    """One exchange as kept on the payment (the API key is never in it: see gateway.http)."""
    if exchange is None:
        return {"note": note}
    return {
        "note": note,
        "request": exchange.request,
        "status": exchange.status,
        "response": exchange.response,
    }


@dataclass(frozen=True)
class Asked:
    """What asking the gateway came to: accepted (a charge exists), refused (a definite no),
    or unknown (no answer we can trust after every attempt)."""

    outcome: Literal["accepted", "refused", "unknown"]
    evidence: list[dict[str, object]]
    created: ChargeCreated | None = None
    refusal: str | None = None  # "<code>: <detail>"


def first_check_at(now: datetime, outcome: str, grace_s: float, schedule: list[float]) -> datetime:
    """When the sweeper first asks about the payment: an unknown one at the schedule's first
    step; an accepted one when its callback is overdue."""
    if outcome == "unknown":
        return now + timedelta(seconds=schedule[0])
    return now + timedelta(seconds=grace_s)
