"""Gateway request: charge the gateway part through the order's adapter with our own
idempotency key; a wallet-only payment skips the gateway and is decided here.

The gateway is asked a bounded number of times with the same key. A definite "no" fails the
payment; no answer we can trust makes it `unknown`, with every exchange kept as evidence, and
the stage moves on: the sweeper asks the gateway later. A gateway outage never holds the
partition."""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

import asyncpg
import structlog

from contracts.envelope import Envelope
from contracts.events.funds import FundsFrozen, FundsFrozenPayload
from contracts.events.payments import PaymentDecisionPayload, PaymentFailed, PaymentSucceeded
from contracts.topics import FUNDS_FROZEN, Topic
from infra.settings import Settings
from workers.gateway.registry import Gateways
from workers.gateway_request import charges
from workers.gateway_request.charges import payment_id_for
from workers.order_state import set_order_states
from workers.payments import records, rules
from workers.payments.calls import ask
from workers.payments.rules import Asked
from workers.runtime.errors import PermanentError
from workers.runtime.metrics import UNKNOWN_PAYMENTS
from workers.runtime.stage import Stage

log = structlog.get_logger()


def _decision(frozen: FundsFrozenPayload, **extra: Any) -> PaymentDecisionPayload:
    return PaymentDecisionPayload(
        order_id=frozen.order_id,
        transaction_id=frozen.transaction_id,
        buyer_id=frozen.buyer_id,
        total=frozen.total,
        wallet_part=frozen.wallet_part,
        gateway_part=frozen.gateway_part,
        **extra,
    )


_UNPLANNED = object()


class GatewayRequest(Stage):
    name: ClassVar[str] = "gateway_request"
    consumes: ClassVar[Topic] = FUNDS_FROZEN
    batched: ClassVar[bool] = True

    def __init__(self, pool: asyncpg.Pool, gateways: Gateways, settings: Settings) -> None:
        self.pool, self.gateways, self.settings = pool, gateways, settings
        self._planned: dict[UUID, charges.Planned] = {}  # this batch's, until `prepare`

    async def before_prepare(self, events: list[Envelope]) -> None:
        card = [e for e in events if isinstance(e, FundsFrozen) and e.payload.gateway_part.amount]
        self._planned = await charges.plan(self.pool, self.gateways, card) if card else {}

    async def prepare(self, event: Envelope) -> Asked | None:
        assert isinstance(event, FundsFrozen)
        if event.payload.gateway_part.amount == 0:
            return None
        planned = self._planned.pop(event.event_id, _UNPLANNED)
        if planned is _UNPLANNED:  # prepared on its own
            planned = (await charges.plan(self.pool, self.gateways, [event]))[event.event_id]
        if isinstance(planned, PermanentError):
            raise planned
        if planned is None:
            return None  # cancelled (payment window) before we got to it: charge nothing
        assert isinstance(planned, charges.Charge)
        return await ask(planned.gateway, planned.request, self.settings)

    async def handle(
        self, event: Envelope, tx: asyncpg.Connection, prepared: Any
    ) -> Sequence[Envelope]:
        return (await self.handle_batch([event], tx, {event.event_id: prepared}))[0]

    async def handle_batch(
        self, events: list[Envelope], tx: asyncpg.Connection, prepared: Mapping[UUID, Any]
    ) -> list[Sequence[Envelope]]:
        """The gateway's answers recorded and the orders moved on, one statement each for
        the whole batch."""
        frozen = [e for e in events if isinstance(e, FundsFrozen)]
        assert len(frozen) == len(events)
        # Paid wholly from the wallet (no gateway call): paid now, unless no longer open (the
        # payment window closed first); an order's second event finds it paid already.
        wallet_only = [
            e
            for e in frozen
            if prepared.get(e.event_id) is None and e.payload.gateway_part.amount == 0
        ]
        paid = await set_order_states(
            tx, [e.payload.order_id for e in wallet_only], "paid", ("funds_frozen",)
        )
        first: dict[str, UUID] = {}
        for e in wallet_only:
            first.setdefault(e.payload.order_id, e.event_id)
        asked = [
            (e, prepared[e.event_id]) for e in frozen if isinstance(prepared.get(e.event_id), Asked)
        ]
        s, now = self.settings, datetime.now(UTC)
        await records.record_answers(
            tx,
            [
                (
                    payment_id_for(e.payload.transaction_id),
                    a,
                    rules.first_check_at(now, a.outcome, s.callback_grace_s, s.sweeper_schedule),
                )
                for e, a in asked
            ],
        )
        # Accepted or unknown: the decision comes with a callback or the sweeper's query.
        requested = [e.payload.order_id for e, a in asked if a.outcome != "refused"]
        await set_order_states(tx, requested, "payment_requested", ("funds_frozen",))
        answers: dict[UUID, list[Envelope]] = {}
        for e in wallet_only:
            o = e.payload.order_id
            mine = o in paid and first[o] == e.event_id
            answers[e.event_id] = (
                [PaymentSucceeded.caused_by(e, _decision(e.payload))] if mine else []
            )
        for e, a in asked:
            answers[e.event_id] = self._answered(e, a)
        # Any other event: the order was closed before we asked the gateway.
        return [answers.get(e.event_id, []) for e in frozen]

    def _answered(self, event: FundsFrozen, asked: Asked) -> list[Envelope]:
        frozen = event.payload
        if asked.outcome == "refused":
            return [
                PaymentFailed.caused_by(
                    event,
                    _decision(
                        frozen,
                        reason_code="gateway_refused_request",
                        detail=f"gateway refused: {(asked.refusal or '')[:500]}",
                    ),
                )
            ]
        if asked.outcome == "unknown":
            UNKNOWN_PAYMENTS.inc()
            payment_id = payment_id_for(frozen.transaction_id)
            log.warning("payment_unknown", payment_id=payment_id, order_id=frozen.order_id)
        return []
