"""Wallet operations, one database transaction per step between foreign calls:

top-up:     requested --(gateway charge; its verified callback)--> completed | failed | review
withdrawal: requested --(TCC Try: freeze)--> frozen --(payout)--> completed (Confirm)
                                                              \\-> failed (Cancel: returned)
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

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
from workers.gateway.port import (
    ChargeCreated,
    Gateway,
    GatewayRefused,
    Payout,
)
from workers.gateway.registry import Gateways
from workers.ledger import accounts, postings
from workers.participants import funds
from workers.runtime.stage import Stage
from workers.tcc.barrier import Verdict
from workers.wallet import gateway_calls as calls
from workers.wallet import store

HOLD_TTL = timedelta(hours=1)
OUTCOME_EVENTS = {
    "completed": WalletOperationCompleted,
    "failed": WalletOperationFailed,
    "manual_review": WalletOperationNeedsReview,
}
Request = TopUpGatewayResultPayload | TopUpRequestedPayload | WithdrawalRequestedPayload
# Top-ups are card charges: the adapter that serves "card" (settings.routes) charges them and
# pays withdrawals out (payouts are the gateway house's, whichever product).
WALLET_METHOD = "card"


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


class WalletOperations(Stage):
    name: ClassVar[str] = "wallet"
    consumes: ClassVar[Topic] = WALLET_REQUESTS
    also_consumes: ClassVar[tuple[Topic, ...]] = (WALLET_STEPS,)

    def __init__(self, pool: asyncpg.Pool, gateways: Gateways) -> None:
        self.pool = pool
        # Resolved now: a configuration without a card route stops the stage at start, not
        # each top-up at the gateway.
        self.gateway: Gateway = gateways.for_method(WALLET_METHOD)

    async def prepare(self, event: Envelope) -> ChargeCreated | Payout | GatewayRefused | None:
        """The gateway call, outside the transaction. An unknown outcome (GatewayUnknown)
        is raised: the runtime retries the batch and the same key is sent again."""
        try:
            if isinstance(event, TopUpRequested):
                return await calls.charge_top_up(self.pool, self.gateway, event.payload)
            if isinstance(event, WithdrawalFrozen):
                return await calls.pay_out(self.pool, self.gateway, event.payload)
        except GatewayRefused as refused:
            return refused  # a definite "no": recorded and closed in the transaction
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
        self,
        tx: asyncpg.Connection,
        event: TopUpRequested,
        answer: ChargeCreated | GatewayRefused | None,
    ) -> Sequence[Envelope]:
        if answer is None:
            return []  # the same operation again: already under way or done
        req = event.payload
        payment_id = calls.top_up_payment_id(req.operation_id)
        if isinstance(answer, ChargeCreated):
            await store.record_top_up_answer(tx, payment_id, answer.exchange, answer.gateway_ref)
            return []  # credited when the gateway's callback confirms
        await store.record_top_up_answer(tx, payment_id, calls.evidence(answer), None)
        return await _close(
            tx,
            event,
            "top_up",
            req,
            "failed",
            "requested",
            "gateway_refused_request",
            f"gateway answered {answer.status} {answer.code}: {answer.detail}"[:500],
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
        self, tx: asyncpg.Connection, event: WithdrawalFrozen, answer: Payout | GatewayRefused
    ) -> Sequence[Envelope]:
        w: WithdrawalRequestedPayload = event.payload
        exchange = answer.exchange if isinstance(answer, Payout) else calls.evidence(answer)
        await store.record_payout_reply(tx, w.operation_id, exchange)
        if isinstance(answer, GatewayRefused) or not answer.paid:
            if (await funds.cancel(tx, w.operation_id)).verdict is Verdict.DUPLICATE:
                return []
            why = answer.reason if isinstance(answer, Payout) else str(answer)
            return await _close(
                tx,
                event,
                "withdrawal",
                w,
                "failed",
                "frozen",
                "payout_declined",
                (why or "declined")[:500],
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
