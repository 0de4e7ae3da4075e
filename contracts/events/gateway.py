"""Callbacks from third-party payment gateways, as received (raw body and signature)."""

from typing import Literal

from pydantic import AwareDatetime, Field, StrictInt

from contracts.base import Identifier, StrictModel, Text
from contracts.envelope import Envelope
from contracts.money import Money


class GatewayCallbackBody(StrictModel):
    """What the direct-charge gateway signs (the simulator's /v1 notice). Parsed only after the
    signature over the raw bytes is verified. Other providers' notices have their own shape and
    are read by their adapter."""

    callback_id: Identifier
    kind: Literal["payment", "refund"] = "payment"
    gateway_ref: Identifier = Field(description="The gateway's id of the charge.")
    payment_id: Identifier = Field(description="Our payment request id (merchant reference).")
    refund_id: Identifier | None = Field(default=None, description="Ours, for kind=refund.")
    refund_ref: Identifier | None = Field(default=None, description="The gateway's, for refunds.")
    status: Literal["succeeded", "failed"]
    amount: Money
    failure_reason: Text | None = None
    occurred_at: AwareDatetime


class GatewayCallbackReceivedPayload(StrictModel):
    provider: Identifier = Field(description="Which adapter reads raw_body: direct or redirect.")
    raw_body: Text = Field(max_length=16_384, description="Exact body as the gateway sent it.")
    key_id: Identifier = Field(description="Payflow-Key-Id: which shared key signed it.")
    timestamp: StrictInt = Field(
        ge=0, le=2**40, description="Payflow-Timestamp: Unix seconds, signed with the body."
    )
    signature: Text = Field(
        max_length=256, description='Hex HMAC-SHA256 of f"{timestamp}.{raw_body}".'
    )
    received_at: AwareDatetime


class GatewayCallbackReceived(Envelope):
    """Published by our webhook endpoint after it verified the signature; the callback stage
    verifies again (a producer may publish here directly)."""

    event_type: Literal["gateway.callback_received"] = "gateway.callback_received"
    payload: GatewayCallbackReceivedPayload
