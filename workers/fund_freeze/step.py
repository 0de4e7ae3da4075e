"""Fund freeze: choose each order's payment plan, freeze the wallet parts (TCC Try), record
the transactions as pending payment. Set-based: a batch of orders is read, planned and
written with a handful of statements, whatever its size."""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

import asyncpg

from contracts.envelope import Envelope
from contracts.events.funds import FundsFrozen, FundsFrozenPayload
from contracts.events.orders import OrderBuilt
from contracts.events.payments import PaymentDecisionPayload, PaymentFailed
from contracts.money import Money
from contracts.topics import ORDERS_BUILT, Topic
from infra.settings import get_settings
from workers.fund_freeze import store
from workers.fund_freeze.known import disagreement
from workers.fund_freeze.plan import PaymentPlan, Wanted, plan_batch
from workers.ledger import accounts, deferred_balances
from workers.order_state import set_order_states
from workers.participants import funds
from workers.runtime.errors import PermanentError
from workers.runtime.stage import EventFailed, Stage


def transaction_id_for(order_id: str) -> str:
    return f"tx-{order_id}"


class FundFreeze(Stage):
    name: ClassVar[str] = "fund_freeze"
    consumes: ClassVar[Topic] = ORDERS_BUILT
    batched: ClassVar[bool] = True

    async def before_commit(self, tx: asyncpg.Connection) -> None:
        # The batch's wallet freezes, one update per wallet in account order, held to the commit.
        await deferred_balances.flush(tx)

    async def handle(
        self, event: Envelope, tx: asyncpg.Connection, prepared: Any
    ) -> Sequence[Envelope]:
        return (await self.handle_batch([event], tx, {event.event_id: prepared}))[0]

    async def handle_batch(
        self, events: list[Envelope], tx: asyncpg.Connection, prepared: Mapping[UUID, Any]
    ) -> list[Sequence[Envelope]]:
        built = [e for e in events if isinstance(e, OrderBuilt)]
        assert len(built) == len(events)
        stored = await store.stored_orders(tx, (e.payload.order_id for e in built))
        for e in built:
            unlike = disagreement(e.payload, stored.get(e.payload.order_id))
            if unlike is not None:
                raise EventFailed(e.event_id, PermanentError("order_not_built", unlike))
        # An order frozen before (under another event id, or earlier in this batch) is done.
        done = {oid for oid, s in stored.items() if s.frozen}
        new: dict[str, OrderBuilt] = {}
        for e in built:
            if e.payload.order_id not in done:
                new.setdefault(e.payload.order_id, e)
        wallets = {
            oid: await accounts.ensure(
                tx, accounts.wallet(e.payload.buyer_id, e.payload.total.currency)
            )
            for oid, e in new.items()
        }
        # No lock: the freezes are parked and the flush at the end of the batch refuses an
        # overdraft (then the batch runs again on the new balances).
        available = await deferred_balances.available(tx, wallets.values())
        plans = plan_batch(
            [
                Wanted(oid, wallets[oid], e.payload.payment_preference, e.payload.total.amount)
                for oid, e in new.items()
            ],
            available,
        )
        expires_at = funds.hold_expires_at(datetime.now(UTC), get_settings().payment_window_s)
        payable = {oid: p for oid, p in plans.items() if isinstance(p, PaymentPlan)}
        entries = await funds.freeze_parked(
            tx,
            [
                funds.HoldRequest(
                    oid, wallets[oid], p.wallet_part, new[oid].payload.total.currency, expires_at
                )
                for oid, p in payable.items()
            ],
        )
        for oid, entry in entries.items():
            if not entry.apply:  # a Cancel for this order ran first: never hold again
                why = PermanentError(
                    "freeze_refused", f"order {oid}: {entry.verdict} {entry.reason}"
                )
                raise EventFailed(new[oid].event_id, why)
        await store.save_transactions(
            tx,
            [
                store.NewTransaction(
                    transaction_id_for(oid),
                    e.payload,
                    payable.get(oid) or PaymentPlan(e.payload.total.amount, 0),
                    None if oid in payable else str(plans[oid]),
                )
                for oid, e in new.items()
            ],
            await store.fees(
                tx, (s.merchant_id for e in new.values() for s in e.payload.sub_orders)
            ),
        )
        await set_order_states(tx, list(payable), "funds_frozen", ("built",))
        outputs: dict[str, Envelope] = {
            oid: self._frozen(e, payable[oid], expires_at)
            if oid in payable
            else self._failed(e, str(plans[oid]))
            for oid, e in new.items()
        }
        return [
            [outputs[e.payload.order_id]] if new.get(e.payload.order_id) is e else [] for e in built
        ]

    def _frozen(self, event: OrderBuilt, plan: PaymentPlan, expires_at: datetime) -> Envelope:
        order, currency = event.payload, event.payload.total.currency
        return FundsFrozen.caused_by(
            event,
            FundsFrozenPayload(
                order_id=order.order_id,
                transaction_id=transaction_id_for(order.order_id),
                buyer_id=order.buyer_id,
                total=order.total,
                wallet_part=Money(amount=plan.wallet_part, currency=currency),
                gateway_part=Money(amount=plan.gateway_part, currency=currency),
                hold_expires_at=expires_at,
                payment_method=order.payment_method,
                sub_orders=order.sub_orders,
            ),
        )

    def _failed(self, event: OrderBuilt, detail: str) -> Envelope:
        # Nothing was frozen. Settlement cancels the stock and coupon holds and the funds
        # Cancel finds no Try (empty compensation).
        order, cur = event.payload, event.payload.total.currency
        return PaymentFailed.caused_by(
            event,
            PaymentDecisionPayload(
                order_id=order.order_id,
                transaction_id=transaction_id_for(order.order_id),
                buyer_id=order.buyer_id,
                total=order.total,
                wallet_part=Money(amount=order.total.amount, currency=cur),
                gateway_part=Money(amount=0, currency=cur),
                reason_code="insufficient_funds",
                detail=detail,
            ),
        )
