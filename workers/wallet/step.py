"""Wallet operations, one database transaction per step between foreign calls:

top-up:     requested --(gateway charge; its verified callback)--> completed | failed | review
withdrawal: requested --(TCC Try: freeze)--> frozen --(payout)--> completed (Confirm)
                                                              \\-> failed (Cancel: returned)
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import aiohttp
import asyncpg

from contracts.envelope import Envelope
from contracts.events.wallet import (
    OperationKind,
    TopUpGatewayResult,
    TopUpGatewayResultPayload,
    TopUpRequested,
    TopUpRequestedPayload,
    WalletOperationClosedPayload,
    WalletOperationCompleted,
    WalletOperationFailed,
    WalletOperationNeedsReview,
    WithdrawalFrozen,
    WithdrawalRequested,
    WithdrawalRequestedPayload,
)
from contracts.topics import WALLET_REQUESTS, WALLET_STEPS, Topic
from workers.gateway_request import client
from workers.gateway_request.client import GatewayReply
from workers.gateway_request.store import record_reply
from workers.ledger import accounts, postings
from workers.participants import funds
from workers.runtime.stage import Stage
from workers.tcc.barrier import Verdict
from workers.wallet import payouts, store

HOLD_TTL = timedelta(hours=1)
OUTCOME_EVENTS = {
    "completed": WalletOperationCompleted,
    "failed": WalletOperationFailed,
    "manual_review": WalletOperationNeedsReview,
}
Request = TopUpGatewayResultPayload | TopUpRequestedPayload | WithdrawalRequestedPayload


async def _close(
    tx: asyncpg.Connection,
    event: Envelope,
    kind: OperationKind,
    req: Request,
    to: str,
    from_: str,
    reason: str | None = None,
    detail: str | None = None,
) -> list[Envelope]:
    """Move the operation to its final status and announce it; nothing if it already moved."""
    if not await store.move(tx, req.operation_id, to, (from_,), reason):
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


def top_up_payment_id(operation_id: str) -> str:
    return f"{operation_id}-p1"


class WalletOperations(Stage):
    name: ClassVar[str] = "wallet"
    consumes: ClassVar[Topic] = WALLET_REQUESTS
    also_consumes: ClassVar[tuple[Topic, ...]] = (WALLET_STEPS,)

    def __init__(self, pool: asyncpg.Pool, http: aiohttp.ClientSession, gateway_url: str) -> None:
        self.pool, self.http, self.gateway_url = pool, http, gateway_url

    async def prepare(self, event: Envelope) -> GatewayReply | None:
        if isinstance(event, TopUpRequested):
            req = event.payload
            if await store.record_operation(self.pool, "top_up", req) != "requested":
                return None
            payment_id = top_up_payment_id(req.operation_id)
            key = f"payflow:{payment_id}"
            body = client.request_body(payment_id, req.operation_id, req.amount)
            await store.record_top_up_charge(self.pool, payment_id, req, key, body)
            return await client.create_payment(self.http, self.gateway_url, body, key)
        if isinstance(event, WithdrawalFrozen):
            key = payouts.idempotency_key(event.payload.operation_id)
            body = payouts.request_body(event.payload)
            await store.record_payout_request(self.pool, event.payload.operation_id, key, body)
            return await payouts.send_payout(self.http, self.gateway_url, body, key)
        return None

    async def handle(
        self, event: Envelope, tx: asyncpg.Connection, prepared: Any
    ) -> Sequence[Envelope]:
        if isinstance(event, TopUpRequested):
            return await self._charged(tx, event, prepared)
        if isinstance(event, TopUpGatewayResult):
            return await self._top_up_result(tx, event)
        if isinstance(event, WithdrawalRequested):
            return await self._freeze(tx, event)
        assert isinstance(event, WithdrawalFrozen)
        return await self._paid_out(tx, event, prepared)

    async def _charged(
        self, tx: asyncpg.Connection, event: TopUpRequested, reply: GatewayReply | None
    ) -> Sequence[Envelope]:
        if reply is None:
            return []  # the same operation again: already under way or done
        req = event.payload
        await record_reply(tx, top_up_payment_id(req.operation_id), reply)
        if reply.accepted:
            return []  # credited when the gateway's callback confirms
        return await _close(
            tx,
            event,
            "top_up",
            req,
            "failed",
            "requested",
            "gateway_refused_request",
            f"gateway answered {reply.status}",
        )

    async def _top_up_result(
        self, tx: asyncpg.Connection, event: TopUpGatewayResult
    ) -> Sequence[Envelope]:
        r = event.payload
        if r.status == "mismatch":
            return await _close(
                tx, event, "top_up", r, "manual_review", "requested", "amount_mismatch", r.detail
            )
        if r.status == "failed":
            return await _close(
                tx,
                event,
                "top_up",
                r,
                "failed",
                "requested",
                r.detail or "gateway_declined",
                r.detail,
            )
        closed = await _close(tx, event, "top_up", r, "completed", "requested")
        if closed:  # credited once, in the same transaction as the status change
            cur = r.amount.currency
            wallet = await accounts.ensure(tx, accounts.wallet(r.buyer_id, cur))
            clearing = await accounts.ensure(tx, accounts.external("gateway_clearing", cur))
            await postings.post(
                tx,
                kind="top_up",
                order_id=None,
                idempotency_key=f"top_up:{r.operation_id}",
                currency=cur,
                legs=[postings.Leg(clearing, wallet, r.amount.amount, "top_up")],
            )
        return closed

    async def _freeze(
        self, tx: asyncpg.Connection, event: WithdrawalRequested
    ) -> Sequence[Envelope]:
        w = event.payload
        if await store.record_operation(tx, "withdrawal", w) != "requested":
            return []
        wallet = await accounts.ensure(tx, accounts.wallet(w.buyer_id, w.amount.currency))
        expires_at = datetime.now(UTC) + HOLD_TTL
        try:
            async with tx.transaction():
                entry = await funds.freeze(
                    tx, w.operation_id, wallet, w.amount.amount, w.amount.currency, expires_at
                )
        except funds.InsufficientFunds as exc:
            return await _close(
                tx, event, "withdrawal", w, "failed", "requested", "insufficient_funds", str(exc)
            )
        if not entry.apply:
            return []
        await store.move(tx, w.operation_id, "frozen", ("requested",))
        return [WithdrawalFrozen.caused_by(event, w)]

    async def _paid_out(
        self, tx: asyncpg.Connection, event: WithdrawalFrozen, reply: GatewayReply
    ) -> Sequence[Envelope]:
        w: WithdrawalRequestedPayload = event.payload
        await store.record_payout_reply(tx, w.operation_id, reply.status, reply.body)
        if not payouts.paid(reply):
            if (await funds.cancel(tx, w.operation_id)).verdict is Verdict.DUPLICATE:
                return []
            return await _close(
                tx, event, "withdrawal", w, "failed", "frozen", "payout_declined", reply.body[:500]
            )
        try:
            async with tx.transaction():
                confirmed, held = await funds.confirm(tx, w.operation_id)
        except funds.HoldExpired:
            confirmed, held = None, []
        if confirmed is not None and confirmed.verdict is Verdict.DUPLICATE:
            return []
        if confirmed is None or not confirmed.apply:
            # Paid out, but the hold can no longer be confirmed: money left; a human decides.
            return await _close(
                tx,
                event,
                "withdrawal",
                w,
                "manual_review",
                "frozen",
                "hold_not_confirmable",
                "payout sent, hold not confirmable",
            )
        cur = w.amount.currency
        out = await accounts.ensure(tx, accounts.external("payouts", cur))
        await postings.post(
            tx,
            kind="withdrawal",
            order_id=None,
            idempotency_key=f"withdrawal:{w.operation_id}",
            currency=cur,
            legs=[
                postings.Leg(h.account_id, out, h.amount, "payout", debit_frozen=True) for h in held
            ],
        )
        return await _close(tx, event, "withdrawal", w, "completed", "frozen")
