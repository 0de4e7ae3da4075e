"""An operator's decision of a wallet operation left in manual_review (workers/review), taken
through the wallet stage's own paths: a top-up's result is the TopUpGatewayResult the stage
consumes (so the credit is its normal posting), a withdrawal's fail is the TCC Cancel of its
hold (the funds back in the wallet). Runs in the review action's transaction."""

from typing import Literal

import asyncpg

from contracts.envelope import Envelope
from contracts.events.wallet import (
    TopUpGatewayResult,
    TopUpGatewayResultPayload,
    WalletOperationClosedPayload,
    WalletOperationFailed,
)
from contracts.money import Money
from workers.participants import funds
from workers.review import cases
from workers.wallet import store

# The idempotency keys of the review queue's events start so (workers.review.actions,
# "review:<case>:<action>/<step>"): the stage accepts such a result for an operation in
# manual_review once the operator action log confirms it, a gateway's never.
OPERATOR_KEY_PREFIX = "review:"
OPERATOR_FAIL = "operator_fail"


async def from_operator(conn: asyncpg.Connection, event: Envelope) -> bool:
    """Only when our own log says an operator applied it (the review action commits its log
    row with the event, in one transaction): never on the event's word alone."""
    key = event.idempotency_key
    if not key.startswith(OPERATOR_KEY_PREFIX):
        return False
    return await cases.action_applied(conn, key.split("/", 1)[0])


async def _operation(conn: asyncpg.Connection, operation_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT buyer_id, currency, amount FROM wallet_operations WHERE operation_id = $1",
        operation_id,
    )
    if row is None:
        raise LookupError(f"no wallet operation {operation_id}")
    return row


async def top_up_result(
    conn: asyncpg.Connection,
    operation_id: str,
    status: Literal["succeeded", "failed"],
    gateway_ref: str | None,
    detail: str,
    key: str,
) -> TopUpGatewayResult:
    """The operator's word on a top-up's charge, for the wallet stage to close it."""
    assert key.startswith(OPERATOR_KEY_PREFIX)
    w = await _operation(conn, operation_id)
    payload = TopUpGatewayResultPayload(
        operation_id=operation_id,
        buyer_id=w["buyer_id"],
        amount=Money(amount=w["amount"], currency=w["currency"]),
        status=status,
        gateway_ref=gateway_ref if status == "succeeded" else None,
        detail=f"{OPERATOR_FAIL}: {detail}"[:500] if status == "failed" else detail,
    )
    return TopUpGatewayResult.new(operation_id, payload, idempotency_key=key)


async def cancel_withdrawal(
    conn: asyncpg.Connection, operation_id: str, detail: str, key: str
) -> list[Envelope]:
    """TCC Cancel of the withdrawal's hold (its funds back to available) and the operation
    failed; nothing when it moved already (the outcome event was announced then)."""
    w = await _operation(conn, operation_id)
    await funds.cancel(conn, operation_id)  # a Cancel already applied is a no-op
    if not await store.move(conn, operation_id, "failed", ("manual_review",), OPERATOR_FAIL):
        return []
    payload = WalletOperationClosedPayload(
        operation_id=operation_id,
        kind="withdrawal",
        buyer_id=w["buyer_id"],
        amount=Money(amount=w["amount"], currency=w["currency"]),
        reason_code=OPERATOR_FAIL,
        detail=detail,
    )
    return [WalletOperationFailed.new(operation_id, payload, idempotency_key=key)]
