"""Gateway request: charge the gateway part through the order's adapter with our own
idempotency key; a wallet-only payment skips the gateway and is decided here.

The gateway is asked a bounded number of times with the same key. A definite "no" fails the
payment; no answer we can trust makes it `unknown`, with every exchange kept as evidence, and
the stage moves on: the sweeper asks the gateway later. A gateway outage never holds the
partition."""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import asyncpg
import structlog

from contracts.envelope import Envelope
from contracts.events.funds import FundsFrozen, FundsFrozenPayload
from contracts.events.payments import PaymentDecisionPayload, PaymentFailed, PaymentSucceeded
from contracts.topics import FUNDS_FROZEN, Topic
from infra.settings import Settings
from workers.gateway.registry import Gateways
from workers.gateway_request import store
from workers.order_state import set_order_state
from workers.payments import records, rules
from workers.payments.calls import ask
from workers.payments.rules import Asked
from workers.runtime.errors import PermanentError
from workers.runtime.metrics import UNKNOWN_PAYMENTS
from workers.runtime.stage import Stage

log = structlog.get_logger()


def payment_id_for(transaction_id: str, attempt: int = 1) -> str:
    return f"{transaction_id}-p{attempt}"


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


class GatewayRequest(Stage):
    name: ClassVar[str] = "gateway_request"
    consumes: ClassVar[Topic] = FUNDS_FROZEN

    def __init__(self, pool: asyncpg.Pool, gateways: Gateways, settings: Settings) -> None:
        self.pool, self.gateways, self.settings = pool, gateways, settings

    async def prepare(self, event: Envelope) -> Asked | None:
        assert isinstance(event, FundsFrozen)
        frozen = event.payload
        if frozen.gateway_part.amount == 0:
            return None
        if not await store.still_to_pay(self.pool, frozen.order_id):
            return None  # cancelled (payment window) before we got to it: charge nothing
        try:
            gateway = self.gateways.for_method(frozen.payment_method)
        except ValueError as exc:  # routes changed since the order was built
            raise PermanentError("unsupported_payment_method", str(exc)) from None
        payment_id = payment_id_for(frozen.transaction_id)
        req = rules.charge_request(payment_id, frozen.order_id, frozen.gateway_part)
        body = json.dumps(
            {
                "payment_id": payment_id,
                "order_id": frozen.order_id,
                "amount": frozen.gateway_part.model_dump(),
                "adapter": gateway.name,
            },
            sort_keys=True,
        )
        await store.record_request(
            self.pool, payment_id, frozen, gateway.name, req.idempotency_key, body
        )
        return await ask(gateway, req, self.settings)

    async def handle(
        self, event: Envelope, tx: asyncpg.Connection, prepared: Any
    ) -> Sequence[Envelope]:
        assert isinstance(event, FundsFrozen)
        frozen = event.payload
        if prepared is None and frozen.gateway_part.amount > 0:
            return []  # the order was closed before we asked the gateway
        if prepared is None:  # paid wholly from the wallet: no gateway call
            if not await set_order_state(tx, frozen.order_id, "paid", ("funds_frozen",)):
                return []  # no longer open: the payment window closed first
            return [PaymentSucceeded.caused_by(event, _decision(frozen))]
        assert isinstance(prepared, Asked)
        payment_id = payment_id_for(frozen.transaction_id)
        s = self.settings
        check_at = rules.first_check_at(
            datetime.now(UTC), prepared.outcome, s.callback_grace_s, s.sweeper_schedule
        )
        await records.record_answer(tx, payment_id, prepared, check_at)
        if prepared.outcome == "refused":
            return [
                PaymentFailed.caused_by(
                    event,
                    _decision(
                        frozen,
                        reason_code="gateway_refused_request",
                        detail=f"gateway refused: {(prepared.refusal or '')[:500]}",
                    ),
                )
            ]
        if prepared.outcome == "unknown":
            UNKNOWN_PAYMENTS.inc()
            log.warning("payment_unknown", payment_id=payment_id, order_id=frozen.order_id)
        # Accepted or unknown: the decision comes with a callback or the sweeper's query.
        await set_order_state(tx, frozen.order_id, "payment_requested", ("funds_frozen",))
        return []
