"""Wallet operations: top-ups (credited after the gateway confirms) and withdrawals (frozen,
then paid out or returned). The envelope's correlation_id is the operation id."""

from typing import Literal

from pydantic import Field

from contracts.base import Identifier, StrictModel
from contracts.envelope import Envelope
from contracts.money import Money

OperationKind = Literal["top_up", "withdrawal"]


class TopUpRequestedPayload(StrictModel):
    operation_id: Identifier
    buyer_id: Identifier
    amount: Money


class TopUpRequested(Envelope):
    """Upstream asks to charge the buyer through the gateway and credit the wallet."""

    event_type: Literal["wallet.topup_requested"] = "wallet.topup_requested"
    payload: TopUpRequestedPayload


class WithdrawalRequestedPayload(StrictModel):
    operation_id: Identifier
    buyer_id: Identifier
    amount: Money
    destination: Identifier = Field(description="The payout destination (bank account ref).")


class WithdrawalRequested(Envelope):
    """Upstream asks to pay part of the wallet out to the buyer's bank account."""

    event_type: Literal["wallet.withdrawal_requested"] = "wallet.withdrawal_requested"
    payload: WithdrawalRequestedPayload


class TopUpGatewayResultPayload(StrictModel):
    operation_id: Identifier
    buyer_id: Identifier
    amount: Money
    # unresolved: the sweeper could not learn the outcome after its last check (review).
    status: Literal["succeeded", "failed", "mismatch", "unresolved"]
    gateway_ref: Identifier | None = None
    detail: str | None = None


class TopUpGatewayResult(Envelope):
    """Internal: what the gateway's verified callback, or the sweeper's query, said about a
    top-up charge."""

    event_type: Literal["wallet.topup_gateway_result"] = "wallet.topup_gateway_result"
    payload: TopUpGatewayResultPayload


class WithdrawalFrozen(Envelope):
    """Internal: the amount is frozen on the wallet; the payout may now be sent."""

    event_type: Literal["wallet.withdrawal_frozen"] = "wallet.withdrawal_frozen"
    payload: WithdrawalRequestedPayload


class WalletOperationClosedPayload(StrictModel):
    operation_id: Identifier
    kind: OperationKind
    buyer_id: Identifier
    amount: Money
    reason_code: str | None = None
    detail: str | None = None


class WalletOperationCompleted(Envelope):
    """Top-up credited, or withdrawal paid out."""

    event_type: Literal["wallet.operation_completed"] = "wallet.operation_completed"
    payload: WalletOperationClosedPayload


class WalletOperationFailed(Envelope):
    """Nothing moved: the charge was declined, or the withdrawal was returned to the wallet."""

    event_type: Literal["wallet.operation_failed"] = "wallet.operation_failed"
    payload: WalletOperationClosedPayload


class WalletOperationNeedsReview(Envelope):
    """The gateway's answer does not add up: a human decides."""

    event_type: Literal["wallet.operation_needs_review"] = "wallet.operation_needs_review"
    payload: WalletOperationClosedPayload
