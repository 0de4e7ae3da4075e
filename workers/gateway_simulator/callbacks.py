"""Building signed callbacks, as the gateway would send them, wrapped for our callback topic."""

import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from contracts.events.gateway import (
    GatewayCallbackBody,
    GatewayCallbackReceived,
    GatewayCallbackReceivedPayload,
)
from contracts.money import Money
from contracts.signing import sign
from workers.gateway_simulator.models import Charge

PROVIDER = "simulator"

# Where callbacks go: Kafka in `serve`, a list in unit tests.
CallbackSink = Callable[[GatewayCallbackReceived], Awaitable[None]]


def new_callback_id() -> str:
    return f"cb_{secrets.token_hex(12)}"


def callback_body(charge: Charge, callback_id: str, occurred_at: datetime) -> str:
    """The exact raw body the gateway signs; the outcome's anomalies are applied here."""
    outcome = charge.outcome
    charged = charge.request.amount
    body = GatewayCallbackBody(
        callback_id=callback_id,
        gateway_ref=charge.gateway_ref,
        payment_id=charge.request.payment_id,
        status=outcome.status,
        amount=Money(amount=charged.amount + outcome.reported_delta, currency=charged.currency),
        failure_reason=outcome.failure_reason,
        occurred_at=occurred_at,
    )
    return body.model_dump_json()


def received_event(
    secret: str, order_id: str, callback_id: str, raw_body: str
) -> GatewayCallbackReceived:
    """One delivery of a callback. A re-delivery gets a new event but the same idempotency key,
    as two webhook requests carrying the same body would."""
    payload = GatewayCallbackReceivedPayload(
        provider=PROVIDER,
        raw_body=raw_body,
        signature=sign(secret, raw_body),
        received_at=datetime.now(UTC),
    )
    return GatewayCallbackReceived.new(
        correlation_id=order_id, payload=payload, idempotency_key=f"gw-callback:{callback_id}"
    )
