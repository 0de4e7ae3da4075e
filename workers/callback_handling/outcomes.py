"""The events a decision publishes: caused by the callback it came from, or, when the
sweeper learned it by asking the gateway, new with a key derived from what was learned."""

from dataclasses import dataclass
from typing import Any, TypeVar

from contracts.envelope import Envelope

E = TypeVar("E", bound=Envelope)


@dataclass(frozen=True)
class Decision:
    """What one notice decided: the verdict (applied | duplicate | late | mismatch |
    late_success | second_charge | refund_*), why, and the events to publish."""

    verdict: str
    detail: str | None
    events: list[Envelope]


def event(cls: type[E], cause: Envelope | None, correlation: str, key: str, payload: Any) -> E:
    if cause is not None:
        if cause.correlation_id != correlation:  # a callback is keyed by the payment it names
            cause = cause.model_copy(update={"correlation_id": correlation})
        return cls.caused_by(cause, payload)
    return cls.new(correlation, payload, idempotency_key=f"{key}/{cls.type_name()}")
