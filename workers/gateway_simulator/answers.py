"""What the API answers: a status and a JSON body, kept under the idempotency key."""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any] = field(default_factory=dict)
    remember: bool = True  # stored under the Idempotency-Key and replayed
    hold_s: float = 0.0  # the answer is withheld this long (timeout_after_charge)


def error(status: int, code: str, detail: str, *, remember: bool = False) -> Answer:
    return Answer(status, {"error": code, "detail": detail}, remember=remember)


# Refusals are not kept by default: they depend on the record's state (not yet captured, no
# longer voidable), so a retry with the same key is judged again.
