"""The charge request body and the in-memory charge record."""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field

from contracts.base import Identifier, StrictModel
from contracts.money import Money
from workers.gateway_simulator.rules import Outcome

ChargeStatus = Literal["pending", "succeeded", "failed"]


class ChargeRequest(StrictModel):
    payment_id: Identifier
    order_id: Identifier
    amount: Money
    description: str | None = Field(default=None, max_length=500)

    def fingerprint(self) -> str:
        # Canonical form: the same parameters compare equal whatever the JSON spacing/order.
        return self.model_dump_json()

    def same_terms(self, other: "ChargeRequest") -> bool:
        """Whether two requests describe the same charge (the description is cosmetic)."""
        return (self.payment_id, self.order_id, self.amount) == (
            other.payment_id,
            other.order_id,
            other.amount,
        )


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Charge:
    gateway_ref: str
    request: ChargeRequest
    outcome: Outcome  # decided at creation, revealed when the callback fires
    status: ChargeStatus = "pending"
    failure_reason: str | None = None
    created_at: datetime = field(default_factory=_now)
    updated_at: datetime = field(default_factory=_now)

    def settle(self, at: datetime) -> None:
        self.status = self.outcome.status
        self.failure_reason = self.outcome.failure_reason
        self.updated_at = at

    def created_view(self) -> dict[str, Any]:
        return {
            "gateway_ref": self.gateway_ref,
            "payment_id": self.request.payment_id,
            "status": self.status,
        }

    def status_view(self) -> dict[str, Any]:
        # The true charged amount: an over-reporting callback does not change what was charged.
        return {
            **self.created_view(),
            "order_id": self.request.order_id,
            "amount": self.request.amount.model_dump(),
            "failure_reason": self.failure_reason,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }
