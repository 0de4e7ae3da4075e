"""Fund freeze: choose the payment plan, freeze the wallet part (TCC Try), record the
transaction as pending payment."""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import asyncpg

from contracts.envelope import Envelope
from contracts.events.funds import FundsFrozen, FundsFrozenPayload
from contracts.events.orders import OrderBuilt, OrderBuiltPayload
from contracts.events.payments import PaymentDecisionPayload, PaymentFailed
from contracts.money import Money
from contracts.topics import ORDERS_BUILT, Topic
from infra.settings import get_settings
from workers.fund_freeze import store
from workers.fund_freeze.plan import InsufficientWallet, PaymentPlan, plan_payment
from workers.ledger import accounts, deferred_balances
from workers.order_state import set_order_state
from workers.participants import funds
from workers.runtime.errors import PermanentError
from workers.runtime.stage import Stage


def transaction_id_for(order_id: str) -> str:
    return f"tx-{order_id}"


class FundFreeze(Stage):
    name: ClassVar[str] = "fund_freeze"
    consumes: ClassVar[Topic] = ORDERS_BUILT

    async def before_commit(self, tx: asyncpg.Connection) -> None:
        # The batch's wallet freezes, one update per wallet in account order, held to the commit.
        await deferred_balances.flush(tx)

    async def handle(
        self, event: Envelope, tx: asyncpg.Connection, prepared: Any
    ) -> Sequence[Envelope]:
        assert isinstance(event, OrderBuilt)
        order = event.payload
        if await store.transaction_exists(tx, order.order_id):
            return []  # already frozen under another event id
        currency = order.total.currency
        wallet = await accounts.ensure(tx, accounts.wallet(order.buyer_id, currency))
        # No lock: the freeze is parked and the flush at the end of the batch refuses an
        # overdraft (then the batch runs again on the new balance).
        available = await deferred_balances.available(tx, wallet)
        txn_id = transaction_id_for(order.order_id)
        try:
            plan = plan_payment(order.payment_preference, order.total.amount, available)
        except InsufficientWallet as exc:
            plan = PaymentPlan(order.total.amount, 0)
            return [await self._failed(tx, event, order, txn_id, plan, str(exc))]
        expires_at = funds.hold_expires_at(datetime.now(UTC), get_settings().payment_window_s)
        # Parked, so it cannot fail here: the plan took no more than `available`.
        entry = await funds.freeze(
            tx, order.order_id, wallet, plan.wallet_part, currency, expires_at, defer=True
        )
        if not entry.apply:
            raise PermanentError(
                "freeze_refused", f"order {order.order_id}: {entry.verdict} {entry.reason}"
            )
        await store.save_transaction(tx, txn_id, order, plan, "pending_payment")
        await set_order_state(tx, order.order_id, "funds_frozen", ("built",))
        return [
            FundsFrozen.caused_by(
                event,
                FundsFrozenPayload(
                    order_id=order.order_id,
                    transaction_id=txn_id,
                    buyer_id=order.buyer_id,
                    total=order.total,
                    wallet_part=Money(amount=plan.wallet_part, currency=currency),
                    gateway_part=Money(amount=plan.gateway_part, currency=currency),
                    hold_expires_at=expires_at,
                    payment_method=order.payment_method,
                    sub_orders=order.sub_orders,
                ),
            )
        ]

    async def _failed(
        self,
        tx: asyncpg.Connection,
        event: OrderBuilt,
        order: OrderBuiltPayload,
        txn_id: str,
        plan: PaymentPlan,
        detail: str,
    ) -> Envelope:
        # Nothing was frozen. Settlement cancels the stock and coupon holds and the funds
        # Cancel finds no Try (empty compensation).
        await store.save_transaction(tx, txn_id, order, plan, "pending_payment", detail)
        cur = order.total.currency
        return PaymentFailed.caused_by(
            event,
            PaymentDecisionPayload(
                order_id=order.order_id,
                transaction_id=txn_id,
                buyer_id=order.buyer_id,
                total=order.total,
                wallet_part=Money(amount=plan.wallet_part, currency=cur),
                gateway_part=Money(amount=plan.gateway_part, currency=cur),
                reason_code="insufficient_funds",
                detail=detail,
            ),
        )
