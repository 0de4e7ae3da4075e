"""Callbacks from third-party payment gateways, as received (raw body and signature)."""

from typing import Literal

from pydantic import AwareDatetime, Field

from contracts.base import Identifier, StrictModel, Text
from contracts.envelope import Envelope
from contracts.money import Money


class GatewayCallbackBody(StrictModel):
    """What the gateway signs. Parsed only after the signature over the raw bytes is verified."""

    callback_id: Identifier
    gateway_ref: Identifier
    payment_id: Identifier = Field(description="Our payment request id (merchant reference).")
    status: Literal["succeeded", "failed"]
    amount: Money
    failure_reason: Text | None = None
    occurred_at: AwareDatetime


class GatewayCallbackReceivedPayload(StrictModel):
    provider: Identifier
    raw_body: Text = Field(max_length=16_384, description="Exact body as the gateway sent it.")
    signature: Text = Field(max_length=256, description="Hex HMAC-SHA256 of raw_body.")
    received_at: AwareDatetime


class GatewayCallbackReceived(Envelope):
    """Published by the gateway (or our webhook endpoint) unverified; the callback stage verifies."""

    event_type: Literal["gateway.callback_received"] = "gateway.callback_received"
    payload: GatewayCallbackReceivedPayload
