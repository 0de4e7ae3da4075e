"""Closing a wallet operation: its final status once, and the outcome event upstream reads."""

import asyncpg

from contracts.envelope import Envelope
from contracts.events.wallet import (
    OperationKind,
    TopUpGatewayResultPayload,
    TopUpRequestedPayload,
    WalletOperationClosedPayload,
    WalletOperationCompleted,
    WalletOperationFailed,
    WalletOperationNeedsReview,
    WithdrawalRequestedPayload,
)
from workers.wallet import store

OUTCOME_EVENTS = {
    "completed": WalletOperationCompleted,
    "failed": WalletOperationFailed,
    "manual_review": WalletOperationNeedsReview,
}
Request = TopUpGatewayResultPayload | TopUpRequestedPayload | WithdrawalRequestedPayload


async def close(
    tx: asyncpg.Connection,
    event: Envelope,
    kind: OperationKind,
    req: Request,
    to: str,
    from_: str | tuple[str, ...],
    reason: str | None = None,
    detail: str | None = None,
) -> list[Envelope]:
    """Move the operation to its final status and announce it; nothing if it already moved."""
    sources = (from_,) if isinstance(from_, str) else from_
    if not await store.move(tx, req.operation_id, to, sources, reason):
        return []
    return [
        OUTCOME_EVENTS[to].caused_by(
            event,
            WalletOperationClosedPayload(
                operation_id=req.operation_id,
                kind=kind,
                buyer_id=req.buyer_id,
                amount=req.amount,
                reason_code=reason,
                detail=detail,
            ),
        )
    ]
