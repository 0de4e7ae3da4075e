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
from contracts.events.wallet import TopUpGatewayResult, TopUpGatewayResultPayload
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

    assert req.order_id is not None and req.transaction_id is not None
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
        async with locks.held(self.redis, f"payment:{event.correlation_id}"):
            req = await store.lock_request(tx, body.payment_id)
            if req is None or req.correlation_id != event.correlation_id:
                raise PermanentError(
                    "unmatched_callback",
                    f"no payment {body.payment_id} for {event.correlation_id}",
                )
            verdict, detail, outcome = await self._decide(tx, req, body)
        await store.record_callback(tx, event, received, body, verdict, detail)
        if outcome is None:
            return []
        if req.wallet_operation_id is not None:
            return [_top_up_result(event, req, body, outcome, detail)]
        return [await _order_decision(tx, event, req, body, outcome, detail)]

    async def _decide(
        self, tx: asyncpg.Connection, req: PaymentRequest, body: GatewayCallbackBody
    ) -> tuple[str, str | None, str | None]:
        """(verdict, detail, outcome): outcome is succeeded / failed / mismatch when this
        callback decided the payment, None when it was already decided."""
        asked = Money(amount=req.amount, currency=req.currency)
        detail = body.failure_reason
        status: str = body.status
        outcome: str = body.status
        if body.amount != asked:
            detail = f"gateway reports {body.amount}, we asked {asked}"
            status, outcome = "manual_review", "mismatch"
        if not await store.decide(tx, req, status, body.gateway_ref):
            # Already decided: the same answer again, or a contradicting late one.
            if req.status == status:
                return "duplicate", None, None
            return "late", f"payment is {req.status}, callback says {status}", None
        return ("mismatch" if outcome == "mismatch" else "applied"), detail, outcome


async def _order_decision(
    tx: asyncpg.Connection,
    event: Envelope,
    req: PaymentRequest,
    body: GatewayCallbackBody,
    outcome: str,
    detail: str | None,
) -> Envelope:
    assert req.order_id is not None
    open_states = ("funds_frozen", "payment_requested")
    if outcome == "mismatch":
        await set_order_state(tx, req.order_id, "manual_review", open_states, detail)
        return PaymentNeedsReview.caused_by(
            event, _decision(req, body, reason_code="amount_mismatch", detail=detail)
        )
    if outcome == "succeeded":
        await set_order_state(tx, req.order_id, "paid", open_states)
        return PaymentSucceeded.caused_by(event, _decision(req, body))
    return PaymentFailed.caused_by(
        event,
        _decision(
            req,
            body,
            reason_code=body.failure_reason or "gateway_declined",
            detail=f"gateway {body.gateway_ref} declined the payment",
        ),
    )


def _top_up_result(
    event: Envelope,
    req: PaymentRequest,
    body: GatewayCallbackBody,
    outcome: str,
    detail: str | None,
) -> Envelope:
    assert req.wallet_operation_id is not None
    return TopUpGatewayResult.caused_by(
        event,
        TopUpGatewayResultPayload(
            operation_id=req.wallet_operation_id,
            buyer_id=req.buyer_id,
            amount=Money(amount=req.amount, currency=req.currency),
            status=outcome,
            gateway_ref=body.gateway_ref,
            detail=detail,
        ),
    )
