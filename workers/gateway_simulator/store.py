"""In-memory charges and idempotency records (the simulator is a dev tool, not durable).

All methods are synchronous: handlers call them without awaiting in between, so on one event
loop a check-then-insert cannot interleave with another request.
"""

from dataclasses import dataclass
from typing import Any

from workers.gateway_simulator.models import Charge


@dataclass(frozen=True)
class StoredResponse:
    fingerprint: str
    body: dict[str, Any]


class ChargeStore:
    def __init__(self) -> None:
        self._by_ref: dict[str, Charge] = {}
        self._by_payment: dict[str, Charge] = {}
        self._by_key: dict[str, StoredResponse] = {}

    def add(self, charge: Charge) -> None:
        self._by_ref[charge.gateway_ref] = charge
        self._by_payment[charge.request.payment_id] = charge

    def get(self, gateway_ref: str) -> Charge | None:
        return self._by_ref.get(gateway_ref)

    def for_payment(self, payment_id: str) -> Charge | None:
        return self._by_payment.get(payment_id)

    def response_for(self, key: str) -> StoredResponse | None:
        return self._by_key.get(key)

    def remember(self, key: str, fingerprint: str, body: dict[str, Any]) -> None:
        self._by_key[key] = StoredResponse(fingerprint, dict(body))
