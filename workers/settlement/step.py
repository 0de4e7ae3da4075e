"""Settlement: Confirm every hold and pay the merchants, or Cancel every hold.

Each participant (funds, stock, coupons) goes through the TCC barrier, so a redelivered or
duplicated decision has no second effect, and a decision that contradicts an earlier one
(Confirm after Cancel) is refused and sent to review instead of being applied.

Merchant payables and the fee account are hot: every purchase credits them. Their credits
are parked per posting and applied once per account per batch in `before_commit`, inside
the batch transaction, so a merchant row is locked only from that flush to the commit
instead of from the batch's first order on (docs/hot-accounts.md).
"""

from collections.abc import Sequence
from typing import Any, ClassVar

import asyncpg

from contracts.envelope import Envelope
from contracts.events.outcomes import OrderClosedPayload, OrderManualReview
from contracts.events.payments import (
    PaymentDecisionPayload,
    PaymentFailed,
    PaymentNeedsReview,
    PaymentSucceeded,
)
from contracts.events.refunds import RefundRequested
from contracts.topics import ORDERS_REFUNDS, PAYMENTS_DECIDED, Topic
from workers.ledger import postings
from workers.order_state import set_order_state
from workers.participants import coupons, funds, stock, stock_deferred
from workers.review.openers import settlement_verdict
from workers.review.rules import OPERATOR_REASON
from workers.review.store import order_state
from workers.runtime.stage import Stage
from workers.runtime.undoable import undoable
from workers.settlement import cancel_batch, outcomes, prefetch, purchase, sale_batch, store
from workers.settlement.outcomes import OPEN
from workers.settlement.refund_step import refund
from workers.tcc.barrier import Verdict


async def _operator_closes(tx: asyncpg.Connection, p: PaymentDecisionPayload) -> bool:
    """An operator's Cancel of an order in review whose holds went back already (an expired
    hold): it still closes the order (`payflow review resolve`)."""
    operator = (p.reason_code or "").startswith(OPERATOR_REASON)
    return operator and await order_state(tx, p.order_id) == "manual_review"


async def _release_holds(tx: asyncpg.Connection, order_id: str) -> None:
    """Cancel every hold (nothing stays frozen or held) when the order cannot be confirmed;
    the charge the gateway took waits for an operator."""
    await funds.cancel(tx, order_id)
    await stock.release(tx, order_id)
    await coupons.give_back(tx, order_id)


class Settlement(Stage):
    name: ClassVar[str] = "settlement"
    consumes: ClassVar[Topic] = PAYMENTS_DECIDED
    # Refunds of settled orders; one that arrives before its settlement is refused, saying so.
    also_consumes: ClassVar[tuple[Topic, ...]] = (ORDERS_REFUNDS,)

    async def handle(
        self, event: Envelope, tx: asyncpg.Connection, prepared: Any
    ) -> Sequence[Envelope]:
        if isinstance(event, PaymentSucceeded):
            return sale_batch.sold(event) or await self._confirm(tx, event)
        if isinstance(event, PaymentFailed):
            return cancel_batch.cancelled(event) or await self._cancel(tx, event)
        if isinstance(event, RefundRequested):
            return await refund(tx, event)
        assert isinstance(event, PaymentNeedsReview)
        p = event.payload
        await store.set_transaction_status(tx, p.transaction_id, "manual_review", p.detail)
        return [self._review(event, p.reason_code or "needs_review", p.detail or "")]

    def _review(self, event: Envelope, code: str, detail: str) -> Envelope:
        return OrderManualReview.caused_by(
            event,
            OrderClosedPayload(
                order_id=event.correlation_id, stage="settlement", reason_code=code, detail=detail
            ),
        )

    async def before_batch(self, events: list[Envelope], tx: asyncpg.Connection) -> None:
        await prefetch.prefetch(events, tx)
        await sale_batch.sell_batch(tx, events)
        await cancel_batch.cancel_batch(tx, events)

    async def before_commit(self, tx: asyncpg.Connection) -> None:
        # Hot rows last, each once, in key order: stock, then merchant and fee accounts.
        await stock_deferred.flush(tx)
        await postings.flush_deferred(tx)

    async def _confirm(self, tx: asyncpg.Connection, event: PaymentSucceeded) -> Sequence[Envelope]:
        p = await purchase.verified(tx, event.payload)
        bought = await purchase.build(tx, p)
        if bought.problems:  # money that does not add up is never posted
            await _release_holds(tx, p.order_id)
            detail = "the transaction does not add up: " + "; ".join(bought.problems)
            return await self._to_review(tx, event, p, "settlement_check", detail)
        try:
            async with undoable(tx):  # all or nothing: a broken invariant moves nothing
                stopped = await self._sell(tx, event, p, bought)
        except (
            purchase.Broken,
            stock.HeldStockMissing,
            postings.LedgerError,
            asyncpg.CheckViolationError,
        ) as broken:
            return await self._broken(tx, event, p, str(broken).splitlines()[0])
        if stopped is not None:
            return stopped
        await store.set_transaction_status(tx, p.transaction_id, "settled")
        await set_order_state(tx, p.order_id, "settled", OPEN)
        return [outcomes.settled(event, p, bought.payouts)]

    async def _sell(
        self,
        tx: asyncpg.Connection,
        event: PaymentSucceeded,
        p: PaymentDecisionPayload,
        bought: purchase.Purchase,
    ) -> list[Envelope] | None:
        """Confirm every hold and post the purchase; None when sold, else what happened
        instead (a duplicate, or the order in review)."""
        try:
            entry, held = await funds.confirm(tx, p.order_id, expired=prefetch.expired(p))
        except funds.HoldExpired:  # nothing of the confirm was written
            await _release_holds(tx, p.order_id)
            detail = "the wallet hold expired before the payment was confirmed"
            return await self._to_review(tx, event, p, "hold_expired", detail)
        if entry.verdict is Verdict.DUPLICATE:
            return []
        if entry.verdict is Verdict.REFUSED:
            detail = f"payment succeeded but the order was already cancelled ({entry.reason})"
            return await self._to_review(tx, event, p, "confirm_after_cancel", detail)
        if sum(h.amount for h in held) != p.wallet_part.amount:
            raise purchase.Broken(f"held {held} does not match wallet part {p.wallet_part}")
        await stock.sell(tx, p.order_id, defer=True)
        await coupons.use(tx, p.order_id, locked=prefetch.coupons_locked(p))
        await purchase.post(tx, p, bought)
        return None

    async def _broken(
        self, tx: asyncpg.Connection, event: Envelope, p: PaymentDecisionPayload, why: str
    ) -> list[Envelope]:
        """Settling would break an invariant of the holds or the accounts: nothing of it
        happened; the holds are released if they still can be, and an operator decides."""
        detail = f"settling would break an invariant: {why}"
        try:
            async with tx.transaction():
                await _release_holds(tx, p.order_id)
        except asyncpg.CheckViolationError as stuck:
            detail += f"; the holds could not be released either ({str(stuck).splitlines()[0]})"
        return await self._to_review(tx, event, p, "settlement_check", detail)

    async def _to_review(
        self,
        tx: asyncpg.Connection,
        event: Envelope,
        p: PaymentDecisionPayload,
        verdict: str,
        detail: str,
    ) -> list[Envelope]:
        """A decision we cannot apply: the order waits in review (a cancelled or settled one
        stays so), with a case saying what an operator must do."""
        await store.set_transaction_status(tx, p.transaction_id, "manual_review", detail)
        await set_order_state(tx, p.order_id, "manual_review", OPEN, detail)
        await settlement_verdict(tx, verdict, p.order_id, p.transaction_id, p.gateway_ref, detail)
        return [self._review(event, verdict, detail)]

    async def _cancel(self, tx: asyncpg.Connection, event: PaymentFailed) -> Sequence[Envelope]:
        p = event.payload
        entry = await funds.cancel(tx, p.order_id, defer=True)
        if entry.verdict is Verdict.DUPLICATE and not await _operator_closes(tx, p):
            return []
        if entry.verdict is Verdict.REFUSED:
            detail = f"payment failed after the order was settled ({entry.reason})"
            return await self._to_review(tx, event, p, "cancel_after_confirm", detail)
        await stock.release(tx, p.order_id, defer=True)
        await coupons.give_back(tx, p.order_id)
        reason = outcomes.cancel_reason(p)
        await store.set_transaction_status(tx, p.transaction_id, "cancelled", reason)
        await set_order_state(tx, p.order_id, "cancelled", OPEN, reason)
        return [outcomes.cancelled(event)]
