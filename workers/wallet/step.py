"""Wallet operations, one database transaction per step between foreign calls:

top-up:     requested --(gateway charge; its verified callback or the sweeper's query)-->
                 completed | failed | review
            (an unknown charge outcome is recorded and the stage moves on: the sweeper asks)
withdrawal: requested --(TCC Try: freeze)--> frozen --(payout)--> completed (Confirm)
                                                              \\-> failed (Cancel: returned)
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import asyncpg
import structlog

from contracts.envelope import Envelope
from contracts.events.wallet import (
    TopUpGatewayResult,
    TopUpRequested,
    WithdrawalFrozen,
    WithdrawalRequested,
    WithdrawalRequestedPayload,
)
from contracts.topics import WALLET_REQUESTS, WALLET_STEPS, Topic
from infra.settings import Settings, get_settings
from workers.gateway.port import Gateway, GatewayRefused, Payout
from workers.gateway.registry import Gateways
from workers.ledger import accounts, postings
from workers.participants import funds
from workers.payments import records as payment_records
from workers.payments import rules as payment_rules
from workers.payments.rules import Asked
from workers.review.cases import open_case
from workers.runtime.metrics import UNKNOWN_PAYMENTS
from workers.runtime.stage import Stage
from workers.tcc.barrier import Verdict
from workers.wallet import gateway_calls as calls
from workers.wallet import operator, store
from workers.wallet.closing import close

log = structlog.get_logger()
HOLD_TTL = timedelta(hours=1)
# A top-up result a human decides: the amounts differ, or the sweeper could not learn it.
REVIEW_REASONS = {"mismatch": "amount_mismatch", "unresolved": "payment_unresolved"}
# Top-ups are card charges: the adapter that serves "card" (settings.routes) charges them and
# pays withdrawals out (payouts are the gateway house's, whichever product).
WALLET_METHOD = "card"


class WalletOperations(Stage):
    name: ClassVar[str] = "wallet"
    consumes: ClassVar[Topic] = WALLET_REQUESTS
    also_consumes: ClassVar[tuple[Topic, ...]] = (WALLET_STEPS,)

    def __init__(
        self, pool: asyncpg.Pool, gateways: Gateways, settings: Settings | None = None
    ) -> None:
        self.pool = pool
        self.settings = settings or get_settings()
        # Resolved now: a configuration without a card route stops the stage at start, not
        # each top-up at the gateway.
        self.gateway: Gateway = gateways.for_method(WALLET_METHOD)

    async def prepare(self, event: Envelope) -> Asked | Payout | GatewayRefused | None:
        """The gateway call, outside the transaction. A top-up's charge ends accepted,
        refused or unknown (recorded, then resolved by the sweeper): it never holds the
        partition. A payout's unknown outcome (GatewayUnknown) is raised: the runtime
        retries the batch and the same key is sent again."""
        if isinstance(event, TopUpRequested):
            return await calls.charge_top_up(self.pool, self.gateway, event.payload, self.settings)
        try:
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
        self, tx: asyncpg.Connection, event: TopUpRequested, asked: Asked | None
    ) -> Sequence[Envelope]:
        if asked is None:
            return []  # the same operation again: already under way or done
        req = event.payload
        payment_id = calls.top_up_payment_id(req.operation_id)
        s = self.settings
        check_at = payment_rules.first_check_at(
            datetime.now(UTC), asked.outcome, s.callback_grace_s, s.sweeper_schedule
        )
        await payment_records.record_answer(tx, payment_id, asked, check_at)
        if asked.outcome == "unknown":
            UNKNOWN_PAYMENTS.inc()
            log.warning("top_up_unknown", payment_id=payment_id, operation_id=req.operation_id)
        if asked.outcome != "refused":
            return []  # credited when the callback (or the sweeper's query) confirms
        return await close(
            tx,
            event,
            "top_up",
            req,
            "failed",
            "requested",
            "gateway_refused_request",
            f"gateway refused: {asked.refusal or ''}"[:500],
        )

    async def _top_up_result(
        self, tx: asyncpg.Connection, event: TopUpGatewayResult
    ) -> Sequence[Envelope]:
        r = event.payload
        # An operator's result (workers/review) also decides an operation in manual_review.
        open_: tuple[str, ...] = ("requested",)
        if await operator.from_operator(tx, event):
            open_ = ("requested", "manual_review")
        if r.status in REVIEW_REASONS:
            reason = REVIEW_REASONS[r.status]
            return await close(
                tx, event, "top_up", r, "manual_review", "requested", reason, r.detail
            )
        if r.status == "failed":
            return await close(
                tx,
                event,
                "top_up",
                r,
                "failed",
                open_,
                r.detail or "gateway_declined",
                r.detail,
            )
        closed = await close(tx, event, "top_up", r, "completed", open_)
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
            return await close(
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
            return await close(
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
            why = "the hold expired" if confirmed is None else confirmed.reason
            await open_case(
                tx,
                "hold_expired" if confirmed is None else "race_loser",
                f"withdrawal:{w.operation_id}",
                f"payout sent, but the withdrawal's hold is not confirmable: {why}",
                {
                    "operation_id": w.operation_id,
                    "amount": w.amount.amount,
                    "currency": w.amount.currency,
                },
            )
            return await close(
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
        return await close(tx, event, "withdrawal", w, "completed", "frozen")
