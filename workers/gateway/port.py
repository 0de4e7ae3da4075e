"""The gateway port: everything payflow asks of a payment gateway, whatever its API looks like.

Stages and the wallet use this interface only; `workers/gateway/adapters/` translate it to one
gateway's HTTP API each (direct charge, redirect/QR). Three kinds of answer:

- a definite answer (a dataclass below);
- `GatewayUnknown`: the request may or may not have reached the gateway (timeout, 5xx, lost
  connection). Never "failed": the money may have moved. Retried with the same idempotency
  key, then recorded as unknown and resolved by asking (`query_payment`);
- `GatewayRefused`: the gateway definitely did not do it (4xx), with its reason.
"""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, Protocol

from contracts.money import Money
from workers.runtime.errors import TransientError

ChargeStatus = Literal["pending", "succeeded", "failed", "voided"]
RefundStatus = Literal["pending", "succeeded", "failed"]


class GatewayUnknown(TransientError):
    """The outcome is unknown; `evidence` says what we saw (kept with the payment)."""

    def __init__(self, evidence: str, exchange: "Exchange | None" = None) -> None:
        super().__init__(evidence)
        self.evidence = evidence
        self.exchange = exchange  # the raw exchange, when one took place


class GatewayRefused(Exception):
    """The gateway answered that it did not and will not do this (a 4xx with a reason)."""

    def __init__(
        self, status: int, code: str, detail: str, exchange: "Exchange | None" = None
    ) -> None:
        super().__init__(f"gateway answered {status} {code}: {detail}")
        self.status, self.code, self.detail = status, code, detail
        self.exchange = exchange  # what we sent and the gateway's answer, kept as evidence


@dataclass(frozen=True)
class Exchange:
    """One HTTP exchange, kept as evidence: what we sent and what came back."""

    request: str
    status: int | None
    response: str


@dataclass(frozen=True)
class ChargeRequest:
    payment_id: str  # ours; the gateway's merchant reference
    order_id: str  # or the wallet operation id for a top-up
    amount: Money
    idempotency_key: str  # derived from payment id + attempt: a retry never charges twice
    description: str = ""


@dataclass(frozen=True)
class ChargeCreated:
    gateway_ref: str
    status: ChargeStatus
    exchange: Exchange
    # Redirect/QR gateways: where the buyer goes to pay; the result comes only by notify.
    pay_url: str | None = None
    qr_payload: str | None = None


@dataclass(frozen=True)
class Charge:
    """A charge as the gateway sees it now."""

    gateway_ref: str
    payment_id: str
    status: ChargeStatus
    amount: Money
    failure_reason: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class RefundRequest:
    refund_id: str  # ours
    gateway_ref: str  # the charge refunded
    payment_id: str
    amount: Money
    reason: str
    idempotency_key: str


@dataclass(frozen=True)
class Refund:
    refund_id: str
    refund_ref: str
    gateway_ref: str
    status: RefundStatus
    amount: Money
    failure_reason: str | None = None
    exchange: Exchange | None = None


@dataclass(frozen=True)
class PayoutRequest:
    payout_id: str
    amount: Money
    destination: str
    idempotency_key: str


@dataclass(frozen=True)
class Payout:
    payout_id: str
    paid: bool
    payout_ref: str | None
    reason: str | None
    exchange: Exchange


@dataclass(frozen=True)
class StatementLine:
    """One line of the gateway's daily settlement statement (docs/gateway-api.md)."""

    day: date
    kind: Literal["charge", "refund", "payout"]
    gateway_ref: str  # the charge, refund or payout reference at the gateway
    reference: str  # ours: payment id, refund id or payout id
    amount: Money
    fee: Money
    net: Money
    status: str
    occurred_at: datetime


@dataclass(frozen=True)
class Notice:
    """A verified callback, read into one shape whatever the provider wrote."""

    callback_id: str
    kind: Literal["payment", "refund"]
    payment_id: str
    gateway_ref: str
    status: Literal["succeeded", "failed"]
    amount: Money
    failure_reason: str | None = None
    refund_id: str | None = None
    refund_ref: str | None = None


class Gateway(Protocol):
    """One gateway API. `name` is the adapter name (direct, redirect), also the provider
    name its callbacks carry."""

    name: str
    can_void: bool

    async def create_payment(self, req: ChargeRequest) -> ChargeCreated: ...

    async def query_payment(self, payment_id: str) -> list[Charge]:
        """Every charge the gateway holds for our payment id (more than one is a gateway
        bug we must refund); empty when it never saw the request."""
        ...

    async def void_payment(self, gateway_ref: str, idempotency_key: str) -> Charge:
        """Cancel a charge not yet captured; GatewayRefused when it can no longer be voided."""
        ...

    async def refund(self, req: RefundRequest) -> Refund: ...

    async def query_refund(self, refund_id: str) -> Refund | None: ...

    async def payout(self, req: PayoutRequest) -> Payout: ...

    async def statement(self, day: date) -> list[StatementLine]: ...

    def read_notice(self, raw_body: str) -> Notice:
        """Parse a callback body whose signature was verified; ValueError when malformed."""
        ...
