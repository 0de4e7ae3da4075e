"""Upstream idempotency of order.submitted, with Stripe's semantics (FIELD-NOTES section 3).

A submission is compared with what came before it: first with the submission its order id
was answered for, then (for a new order id) with the one that owns its idempotency key.
"Content" is the request's parameters exactly as sent (line and coupon order included).
An order id is compared on the whole payload; a key on the payload without `order_id`, so
that a shop retrying after a crash under a new order id is recognised as the same purchase.
"""

import hashlib
import uuid
from dataclasses import dataclass
from enum import StrEnum

from contracts.events.orders import OrderSubmitted, OrderSubmittedPayload
from contracts.events.outcomes import OrderSubmissionRefusedPayload

MIN_RETENTION_H = 24  # what the contract promises shops, as Stripe does


def _added_defaults(order: OrderSubmittedPayload) -> set[str]:
    # Fields added to the contract later are left out of a digest while they hold their
    # default, so digests stored before they existed still match the same order.
    return {"payment_method"} if order.payment_method == "card" else set()


def order_digest(order: OrderSubmittedPayload) -> str:
    """The whole payload: what orders.request_digest has always held."""
    dumped = order.model_dump_json(exclude=_added_defaults(order))
    return hashlib.sha256(dumped.encode()).hexdigest()


def request_digest(order: OrderSubmittedPayload) -> str:
    """The payload without its order id: what an idempotency key is bound to."""
    dumped = order.model_dump_json(exclude={"order_id"} | _added_defaults(order))
    return hashlib.sha256(dumped.encode()).hexdigest()


@dataclass(frozen=True)
class Submission:
    order_id: str
    idempotency_key: str
    event_id: uuid.UUID
    order_digest: str
    request_digest: str

    @classmethod
    def of(cls, event: OrderSubmitted) -> "Submission":
        return cls(
            event.payload.order_id,
            event.idempotency_key,
            event.event_id,
            order_digest(event.payload),
            request_digest(event.payload),
        )


@dataclass(frozen=True)
class Earlier:
    """The submission an order id or a key is already bound to, and its digest (of the kind
    the binding compares: order digest for an order id, request digest for a key)."""

    order_id: str
    digest: str
    event_id: uuid.UUID | None  # None for orders recorded before submissions were


class Verdict(StrEnum):
    REDELIVERY = "redelivery"  # the same submission again: the first answer stands
    REPLAY = "replay"  # the same request under a new order id: answer with the original
    ORDER_ID_CONFLICT = "order_id_conflict"
    KEY_CONFLICT = "idempotency_key_conflict"


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    earlier: Earlier
    digest: str  # the submission's digest that was compared with earlier.digest

    @property
    def refused(self) -> bool:
        return self.verdict in (Verdict.ORDER_ID_CONFLICT, Verdict.KEY_CONFLICT)


def against_order_id(bound: Earlier, sub: Submission) -> Judgement:
    """The order id was answered before: same content is a redelivery, else a conflict,
    whatever the key."""
    same = bound.digest == sub.order_digest
    verdict = Verdict.REDELIVERY if same else Verdict.ORDER_ID_CONFLICT
    return Judgement(verdict, bound, sub.order_digest)


def against_key(owner: Earlier, sub: Submission) -> Judgement:
    """A new order id whose key another submission owns."""
    if owner.digest != sub.request_digest:
        verdict = Verdict.KEY_CONFLICT
    elif owner.order_id == sub.order_id:
        verdict = Verdict.REDELIVERY
    else:
        verdict = Verdict.REPLAY
    return Judgement(verdict, owner, sub.request_digest)


def refusal(judgement: Judgement, sub: Submission) -> OrderSubmissionRefusedPayload:
    """What the shop is told (order.submission_refused) when its submission is refused:
    this submission changed nothing, and the order it names is left as it was."""
    first = judgement.earlier.order_id
    if judgement.verdict is Verdict.KEY_CONFLICT:
        return OrderSubmissionRefusedPayload(
            order_id=sub.order_id,
            reason_code="idempotency_key_conflict",
            detail=f"idempotency key {sub.idempotency_key!r} was already used by order {first} "
            "with other content; nothing was done for this order id",
            idempotency_key=sub.idempotency_key,
            refused_event_id=sub.event_id,
            original_order_id=first,
        )
    if judgement.verdict is Verdict.ORDER_ID_CONFLICT:
        return OrderSubmissionRefusedPayload(
            order_id=sub.order_id,
            reason_code="order_id_conflict",
            detail=f"order {first} was already submitted with other content; this submission "
            "was refused and the existing order goes on unchanged",
            idempotency_key=sub.idempotency_key,
            refused_event_id=sub.event_id,
            original_order_id=first,
        )
    raise ValueError(f"{judgement.verdict} is not a refusal")
