"""Callback handling: verify the signature, match the payment, lock the order and decide.

Duplicated callbacks find the payment already decided ('duplicate'); a late callback that
contradicts the decision is recorded ('late') and changes nothing; an amount or currency
that differs from what we asked goes to a human ('mismatch' -> review); a forged or
unmatched callback is dead-lettered for an operator.
"""

from collections.abc import Sequence
from typing import Any, ClassVar

import asyncpg
from pydantic import ValidationError
from redis.asyncio import Redis

from contracts import signing
from contracts.envelope import Envelope
from contracts.events.gateway import GatewayCallbackBody, GatewayCallbackReceived
from contracts.events.payments import (
    PaymentDecisionPayload,
    PaymentFailed,
    PaymentNeedsReview,
    PaymentSucceeded,
)
from contracts.money import Money
from contracts.topics import GATEWAY_CALLBACKS, Topic
from workers.callback_handling import store
from workers.callback_handling.store import PaymentRequest
from workers.order_state import set_order_state
from workers.runtime import locks
from workers.runtime.errors import PermanentError
from workers.runtime.stage import Stage


def _decision(
    req: PaymentRequest, body: GatewayCallbackBody, **extra: Any
) -> PaymentDecisionPayload:
    def m(amount: int) -> Money:
        return Money(amount=amount, currency=req.currency)

    return PaymentDecisionPayload(
        order_id=req.order_id,
        transaction_id=req.transaction_id,
        buyer_id=req.buyer_id,
        total=m(req.total),
        wallet_part=m(req.wallet_part),
        gateway_part=m(req.gateway_part),
        gateway_ref=body.gateway_ref,
        **extra,
    )


class CallbackHandling(Stage):
    name: ClassVar[str] = "callback_handling"
    consumes: ClassVar[Topic] = GATEWAY_CALLBACKS

    def __init__(self, redis: Redis, gateway_secret: str) -> None:
        self.redis, self.secret = redis, gateway_secret

    async def handle(
        self, event: Envelope, tx: asyncpg.Connection, prepared: Any
    ) -> Sequence[Envelope]:
        assert isinstance(event, GatewayCallbackReceived)
        received = event.payload
        if not signing.verify(self.secret, received.raw_body, received.signature):
            raise PermanentError(
                "forged_callback", f"signature of {received.provider} callback does not verify"
            )
        try:
            body = GatewayCallbackBody.model_validate_json(received.raw_body)
        except ValidationError as exc:
            raise PermanentError("malformed_callback", str(exc).replace("\n", " ")[:500]) from exc
        async with locks.held(self.redis, f"order:{event.correlation_id}"):
            req = await store.lock_request(tx, body.payment_id)
            if req is None or req.order_id != event.correlation_id:
                raise PermanentError(
                    "unmatched_callback",
                    f"no payment {body.payment_id} for order {event.correlation_id}",
                )
            verdict, detail, outputs = await self._decide(tx, event, req, body)
        await store.record_callback(tx, event, received, body, verdict, detail)
        return outputs

    async def _decide(
        self,
        tx: asyncpg.Connection,
        event: Envelope,
        req: PaymentRequest,
        body: GatewayCallbackBody,
    ) -> tuple[str, str | None, list[Envelope]]:
        asked = Money(amount=req.amount, currency=req.currency)
        if body.amount != asked:
            detail = f"gateway reports {body.amount}, we asked {asked}"
            if not await store.decide(tx, req, "manual_review", body.gateway_ref):
                return "late", detail, []
            await set_order_state(
                tx, req.order_id, "manual_review", ("funds_frozen", "payment_requested"), detail
            )
            return (
                "mismatch",
                detail,
                [
                    PaymentNeedsReview.caused_by(
                        event, _decision(req, body, reason_code="amount_mismatch", detail=detail)
                    )
                ],
            )
        if not await store.decide(tx, req, body.status, body.gateway_ref):
            # Already decided: the same answer again, or a contradicting late one.
            if req.status == body.status:
                return "duplicate", None, []
            return "late", f"payment is {req.status}, callback says {body.status}", []
        if body.status == "succeeded":
            await set_order_state(tx, req.order_id, "paid", ("funds_frozen", "payment_requested"))
            return "applied", None, [PaymentSucceeded.caused_by(event, _decision(req, body))]
        return (
            "applied",
            body.failure_reason,
            [
                PaymentFailed.caused_by(
                    event,
                    _decision(
                        req,
                        body,
                        reason_code=body.failure_reason or "gateway_declined",
                        detail=f"gateway {body.gateway_ref} declined the payment",
                    ),
                )
            ],
        )
