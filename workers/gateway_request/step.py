"""Gateway request: charge the gateway part with our own idempotency key; a wallet-only
payment skips the gateway and is decided here."""

from collections.abc import Sequence
from typing import Any, ClassVar

import aiohttp
import asyncpg

from contracts.envelope import Envelope
from contracts.events.funds import FundsFrozen, FundsFrozenPayload
from contracts.events.payments import PaymentDecisionPayload, PaymentFailed, PaymentSucceeded
from contracts.topics import FUNDS_FROZEN, Topic
from workers.gateway_request import client, store
from workers.gateway_request.client import GatewayReply
from workers.order_state import set_order_state
from workers.runtime.stage import Stage


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

    def __init__(self, pool: asyncpg.Pool, http: aiohttp.ClientSession, gateway_url: str) -> None:
        self.pool, self.http, self.gateway_url = pool, http, gateway_url

    async def prepare(self, event: Envelope) -> GatewayReply | None:
        assert isinstance(event, FundsFrozen)
        frozen = event.payload
        if frozen.gateway_part.amount == 0:
            return None
        payment_id = payment_id_for(frozen.transaction_id)
        # Derived from payment id + attempt: a retried request can never charge twice.
        key = f"payflow:{payment_id}"
        body = client.request_body(payment_id, frozen.order_id, frozen.gateway_part)
        await store.record_request(self.pool, payment_id, frozen, key, body)
        return await client.create_payment(self.http, self.gateway_url, body, key)

    async def handle(
        self, event: Envelope, tx: asyncpg.Connection, prepared: Any
    ) -> Sequence[Envelope]:
        assert isinstance(event, FundsFrozen)
        frozen = event.payload
        if prepared is None:  # paid wholly from the wallet: no gateway call
            await set_order_state(tx, frozen.order_id, "paid", ("funds_frozen",))
            return [PaymentSucceeded.caused_by(event, _decision(frozen))]
        assert isinstance(prepared, GatewayReply)
        await store.record_reply(tx, payment_id_for(frozen.transaction_id), prepared)
        if prepared.accepted:
            await set_order_state(tx, frozen.order_id, "payment_requested", ("funds_frozen",))
            return []  # the decision comes with the gateway's callback
        return [
            PaymentFailed.caused_by(
                event,
                _decision(
                    frozen,
                    reason_code="gateway_refused_request",
                    detail=f"gateway answered {prepared.status}: {prepared.body[:500]}",
                ),
            )
        ]
