"""The pure idempotency rule of order build: what is "the same request", and what a
submission is, given the submission its order id or its idempotency key is bound to."""

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.codec import decode, encode
from contracts.events.orders import OrderLine, OrderSubmitted, OrderSubmittedPayload
from contracts.events.outcomes import OrderSubmissionRefused
from contracts.topics import ORDERS_OUTCOMES, topic_for
from workers.order_build import store
from workers.order_build.idempotency import (
    Earlier,
    Submission,
    Verdict,
    against_key,
    against_order_id,
    order_digest,
    refusal,
    request_digest,
)
from workers.order_build.step import OrderBuild


def _submitted(order_id: str, *, key: str = "shop-7:cart-1", **changes: object) -> OrderSubmitted:
    fields: dict[str, object] = {
        "order_id": order_id,
        "buyer_id": "buyer-42",
        "currency": "EUR",
        "items": [OrderLine(sku_id="sku-tee", quantity=2), OrderLine(sku_id="sku-mug", quantity=1)],
        "coupon_codes": ["TENOFF"],
        "payment_preference": "wallet_first",
    } | changes
    payload = OrderSubmittedPayload.model_validate(fields)
    return OrderSubmitted.new(order_id, payload, idempotency_key=key)


def _sub(order_id: str, *, key: str = "shop-7:cart-1", **changes: object) -> Submission:
    return Submission.of(_submitted(order_id, key=key, **changes))


def _bound_to(sub: Submission) -> Earlier:
    """How store.order_binding reports the order id `sub` was answered for."""
    return Earlier(sub.order_id, sub.order_digest, sub.event_id)


def _owned_by(sub: Submission) -> Earlier:
    """How store.claim_key reports the submission that owns `sub`'s key."""
    return Earlier(sub.order_id, sub.request_digest, sub.event_id)


# --- digests -----------------------------------------------------------------------------


def test_the_request_digest_ignores_the_order_id_and_the_order_digest_does_not() -> None:
    a, b = _submitted("ord-1").payload, _submitted("ord-2").payload
    assert request_digest(a) == request_digest(b)
    assert order_digest(a) != order_digest(b)


def test_envelope_fields_are_not_content() -> None:
    first, again = _submitted("ord-1", key="k-1"), _submitted("ord-1", key="k-2")
    assert first.event_id != again.event_id
    assert Submission.of(first).request_digest == Submission.of(again).request_digest


@pytest.mark.parametrize(
    "change",
    [
        {"buyer_id": "buyer-43"},
        {"currency": "USD"},
        {
            "items": [
                OrderLine(sku_id="sku-tee", quantity=3),
                OrderLine(sku_id="sku-mug", quantity=1),
            ]
        },
        # Compared exactly as sent: the same lines in another order are other parameters.
        {
            "items": [
                OrderLine(sku_id="sku-mug", quantity=1),
                OrderLine(sku_id="sku-tee", quantity=2),
            ]
        },
        {"coupon_codes": []},
        {"payment_preference": "gateway_only"},
    ],
    ids=lambda c: next(iter(c)),
)
def test_every_parameter_but_the_order_id_is_content(change: dict[str, Any]) -> None:
    assert _sub("ord-1").request_digest != _sub("ord-1", **change).request_digest


def test_a_default_left_out_is_the_same_as_sent() -> None:
    explicit = _sub("ord-1", payment_preference="wallet_first", coupon_codes=[])
    implicit = Submission.of(
        OrderSubmitted.new(
            "ord-1",
            OrderSubmittedPayload(
                order_id="ord-1",
                buyer_id="buyer-42",
                currency="EUR",
                items=[
                    OrderLine(sku_id="sku-tee", quantity=2),
                    OrderLine(sku_id="sku-mug", quantity=1),
                ],
            ),
            idempotency_key="shop-7:cart-1",
        )
    )
    assert explicit.request_digest == implicit.request_digest


# --- the order id it names ----------------------------------------------------------------


def test_same_order_id_same_content_is_a_redelivery_whatever_the_key() -> None:
    first = _sub("ord-1", key="k-1")
    for key in ("k-1", "k-2"):
        judged = against_order_id(_bound_to(first), _sub("ord-1", key=key))
        assert judged.verdict is Verdict.REDELIVERY and not judged.refused


def test_same_order_id_other_content_is_an_order_id_conflict_whatever_the_key() -> None:
    first = _sub("ord-1", key="k-1")
    for key in ("k-1", "k-2"):
        again = _sub("ord-1", key=key, buyer_id="buyer-99")
        judged = against_order_id(_bound_to(first), again)
        assert judged.verdict is Verdict.ORDER_ID_CONFLICT and judged.refused
        assert (judged.digest, judged.earlier.digest) == (again.order_digest, first.order_digest)
        refused = refusal(judged, again)
        assert refused.reason_code == "order_id_conflict"
        assert (refused.order_id, refused.original_order_id) == ("ord-1", "ord-1")
        assert (refused.idempotency_key, refused.refused_event_id) == (key, again.event_id)
        assert "ord-1" in refused.detail and "unchanged" in refused.detail


# --- the key it carries (a new order id) --------------------------------------------------


def test_same_key_same_content_new_order_id_is_a_replay_of_the_original() -> None:
    first, retry = _sub("ord-1"), _sub("ord-2")
    judged = against_key(_owned_by(first), retry)
    assert judged.verdict is Verdict.REPLAY and not judged.refused
    assert judged.earlier.order_id == "ord-1"


def test_same_key_other_content_is_a_key_conflict_naming_the_original() -> None:
    first, other = _sub("ord-1"), _sub("ord-2", items=[OrderLine(sku_id="sku-cap", quantity=1)])
    judged = against_key(_owned_by(first), other)
    assert judged.verdict is Verdict.KEY_CONFLICT and judged.refused
    assert (judged.digest, judged.earlier.digest) == (other.request_digest, first.request_digest)
    refused = refusal(judged, other)
    assert refused.reason_code == "idempotency_key_conflict"
    assert (refused.order_id, refused.original_order_id) == ("ord-2", "ord-1")
    assert (refused.idempotency_key, refused.refused_event_id) == ("shop-7:cart-1", other.event_id)
    assert "ord-1" in refused.detail and "shop-7:cart-1" in refused.detail


def test_the_key_owner_itself_is_a_redelivery() -> None:
    first = _sub("ord-1")
    assert against_key(_owned_by(first), first).verdict is Verdict.REDELIVERY


def test_only_conflicts_are_refusals() -> None:
    first = _sub("ord-1")
    with pytest.raises(ValueError, match="not a refusal"):
        refusal(against_key(_owned_by(first), _sub("ord-2")), _sub("ord-2"))


# --- what the step answers a refused submission with ---------------------------------------


@pytest.mark.parametrize("reason", ["order_id_conflict", "idempotency_key_conflict"])
async def test_a_conflict_is_answered_with_order_submission_refused_derived_from_the_event(
    reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not order.rejected: with order_id_conflict the order id is an existing order that
    goes on to settle. The answer is on orders.outcomes, keyed by the submission's order id,
    and its event id is derived from the refused event, so a redelivery is deduplicated."""
    recorded: list[Any] = []

    async def save_conflict(tx: object, sub: Submission, judged: object) -> None:
        recorded.append((sub, judged))

    monkeypatch.setattr(store, "save_conflict", save_conflict)
    first = _submitted("ord-1")
    if reason == "order_id_conflict":
        event = _submitted("ord-1", key="k-other", buyer_id="buyer-99")
        judged = against_order_id(_bound_to(Submission.of(first)), Submission.of(event))
    else:
        event = _submitted("ord-2", buyer_id="buyer-99")
        judged = against_key(_owned_by(Submission.of(first)), Submission.of(event))
    sub = Submission.of(event)

    no_tx: Any = None  # store.save_conflict, the only use of it, is replaced above
    answers = [await OrderBuild()._answer_again(no_tx, event, sub, judged) for _ in range(2)]

    [answer], [again] = answers
    assert isinstance(answer, OrderSubmissionRefused)
    assert answer.event_type == "order.submission_refused"
    assert topic_for(OrderSubmissionRefused) is ORDERS_OUTCOMES
    assert answer.event_id == again.event_id  # deterministic from the refused event
    assert answer.causation_id == event.event_id
    assert answer.correlation_id == event.payload.order_id
    assert answer.payload.model_dump() == {
        "order_id": event.payload.order_id,
        "reason_code": reason,
        "detail": answer.payload.detail,
        "idempotency_key": event.idempotency_key,
        "refused_event_id": event.event_id,
        "original_order_id": "ord-1",
    }
    assert decode(ORDERS_OUTCOMES.name, encode(answer)) == answer
    assert len(recorded) == 2  # recorded for operators each time it is judged


ids = st.text("abc123", min_size=1, max_size=4).map(lambda s: f"ord-{s}")


@given(first_id=ids, second_id=ids, same_cart=st.booleans())
def test_a_new_order_id_is_built_at_most_once_per_key(
    first_id: str, second_id: str, same_cart: bool
) -> None:
    """Whatever the second submission under a key is, it never becomes a second purchase:
    it is the owner again, a replay of the owner, or refused."""
    first = _sub(first_id)
    second = _sub(second_id) if same_cart else _sub(second_id, buyer_id="buyer-other")
    judged = against_key(_owned_by(first), second)
    if same_cart:
        expected = Verdict.REDELIVERY if first_id == second_id else Verdict.REPLAY
    else:
        expected = Verdict.KEY_CONFLICT
    assert judged.verdict is expected
    assert judged.earlier.event_id == first.event_id


def test_digests_are_unchanged_by_the_default_payment_method() -> None:
    """Keys stored before payment_method existed still match the same order (the digest of a
    payload without the field is what was stored then)."""
    import hashlib

    from contracts.events.orders import OrderLine, OrderSubmittedPayload
    from workers.order_build.idempotency import request_digest

    order = OrderSubmittedPayload(
        order_id="o-1", buyer_id="b-1", currency="EUR", items=[OrderLine(sku_id="s", quantity=1)]
    )
    before = order.model_dump(exclude={"order_id", "payment_method"})
    old = hashlib.sha256(
        OrderSubmittedPayload.model_validate(before | {"order_id": "x"})
        .model_dump_json(exclude={"order_id", "payment_method"})
        .encode()
    ).hexdigest()
    assert request_digest(order) == old
    qr = order.model_copy(update={"payment_method": "qr"})
    assert request_digest(qr) != old
