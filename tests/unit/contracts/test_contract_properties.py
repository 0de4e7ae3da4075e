"""Property tests for money arithmetic, the codec, derived event ids and callback signatures."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from contracts.codec import decode, encode
from contracts.envelope import derived_event_id
from contracts.events.orders import OrderLine, OrderSubmitted, OrderSubmittedPayload
from contracts.money import CURRENCY_EXPONENTS, CurrencyMismatch, Money
from contracts.signing import sign, verify
from contracts.topics import ORDERS_SUBMITTED

CURRENCIES = sorted(CURRENCY_EXPONENTS)
# contracts/envelope.py's namespace, fixed for ever.
EVENT_NS = uuid.UUID("6f1d2c3e-59b5-4c0e-9a57-0c7e5a1f1a00")
MAX = 10**15

currencies = st.sampled_from(CURRENCIES)
amounts = st.integers(min_value=0, max_value=MAX)
identifiers = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}\Z", fullmatch=True)
offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)
aware_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets
)


def money(currency: str, amount: int) -> Money:
    return Money(amount=amount, currency=currency)


@given(currencies, amounts, amounts)
def test_addition_stays_integer_in_one_currency(currency: str, a: int, b: int) -> None:
    assume(a + b <= MAX)
    total = money(currency, a) + money(currency, b)
    assert type(total.amount) is int
    assert (total.amount, total.currency) == (a + b, currency)


@given(currencies, amounts, amounts)
def test_subtraction_never_goes_negative(currency: str, a: int, b: int) -> None:
    if a >= b:
        rest = money(currency, a) - money(currency, b)
        assert type(rest.amount) is int
        assert (rest.amount, rest.currency) == (a - b, currency)
    else:
        with pytest.raises(ValidationError):
            money(currency, a) - money(currency, b)


@given(st.lists(currencies, min_size=2, max_size=2, unique=True), amounts, amounts)
def test_currency_mismatch_is_refused(pair: list[str], a: int, b: int) -> None:
    left, right = money(pair[0], a), money(pair[1], b)
    with pytest.raises(CurrencyMismatch):
        left + right
    with pytest.raises(CurrencyMismatch):
        left - right


@given(st.floats(allow_nan=False) | st.booleans() | st.text(max_size=5), currencies)
def test_money_refuses_non_integers(amount: object, currency: str) -> None:
    with pytest.raises(ValidationError):
        Money(amount=amount, currency=currency)


submitted_payloads = st.builds(
    OrderSubmittedPayload,
    order_id=identifiers,
    buyer_id=identifiers,
    currency=currencies,
    items=st.lists(
        st.builds(OrderLine, sku_id=identifiers, quantity=st.integers(1, 10_000)),
        min_size=1,
        max_size=8,
    ),
    coupon_codes=st.lists(identifiers, max_size=5),
    payment_preference=st.sampled_from(["wallet_first", "wallet_only", "gateway_only"]),
)


@given(
    submitted_payloads,
    st.uuids(),
    aware_datetimes,
    # Any text a JSON message can carry: not NUL (refused), not a lone surrogate (no UTF-8).
    st.text(st.characters(codec="utf-8", blacklist_characters="\x00"), min_size=1, max_size=200),
    st.none() | st.uuids(),
)
def test_order_submitted_round_trips(
    payload: OrderSubmittedPayload,
    event_id: uuid.UUID,
    at: datetime,
    key: str,
    cause: uuid.UUID | None,
) -> None:
    event = OrderSubmitted(
        event_id=event_id,
        event_type="order.submitted",
        schema_version=1,
        occurred_at=at,
        correlation_id=payload.order_id,
        causation_id=cause,
        idempotency_key=key,
        payload=payload,
    )
    again = decode(ORDERS_SUBMITTED.name, encode(event))
    assert again == event
    assert encode(again) == encode(event)


@given(st.uuids(), st.text(max_size=40))
def test_derived_event_id_is_deterministic(cause: uuid.UUID, what: str) -> None:
    assert derived_event_id(cause, what) == derived_event_id(cause, what)
    assert derived_event_id(cause, what) == derived_event_id(str(cause), what)


@given(st.uuids(), st.text(max_size=40))
def test_derived_event_id_is_the_uuid5_it_always_was(cause: uuid.UUID, what: str) -> None:
    # Ids already published must not change: a re-published output keeps its id.
    assert derived_event_id(cause, what) == uuid.uuid5(EVENT_NS, f"{cause}:{what}")


@given(st.uuids(), st.text(max_size=40), st.uuids(), st.text(max_size=40))
def test_derived_event_id_is_distinct_for_distinct_inputs(
    cause_a: uuid.UUID, what_a: str, cause_b: uuid.UUID, what_b: str
) -> None:
    assume((cause_a, what_a) != (cause_b, what_b))
    assert derived_event_id(cause_a, what_a) != derived_event_id(cause_b, what_b)


def test_derived_event_id_differs_per_output_of_one_cause() -> None:
    cause = uuid.uuid4()
    tags = ["order.built", "funds.frozen", "payment.succeeded", "order.settled"]
    assert len({derived_event_id(cause, t) for t in tags}) == len(tags)


TS = 1_800_000_000


def _verifies(secret: str, body: str, signature: str) -> bool:
    keys = {"k1": secret}
    return verify(keys, "k1", TS, body, signature, now=TS, tolerance_s=300) is None


@given(st.text(min_size=1), st.text())
def test_signature_verifies(secret: str, body: str) -> None:
    signature = sign(secret, TS, body)
    assert len(signature) == 64 and signature == signature.lower()
    assert _verifies(secret, body, signature)


@given(st.text(min_size=1), st.text(min_size=1), st.data())
def test_any_one_character_change_to_the_body_fails(
    secret: str, body: str, data: st.DataObject
) -> None:
    signature = sign(secret, TS, body)
    i = data.draw(st.integers(0, len(body) - 1))
    char = data.draw(st.characters(codec="utf-8").filter(lambda c: c != body[i]))
    assert not _verifies(secret, body[:i] + char + body[i + 1 :], signature)


@given(st.text(min_size=1), st.text(), st.data())
def test_any_one_character_change_to_the_signature_fails(
    secret: str, body: str, data: st.DataObject
) -> None:
    signature = sign(secret, TS, body)
    i = data.draw(st.integers(0, len(signature) - 1))
    # verify() accepts upper-case hex (same number), so a change of case only is not a change.
    char = data.draw(st.characters(codec="utf-8").filter(lambda c: c.lower() != signature[i]))
    assert not _verifies(secret, body, signature[:i] + char + signature[i + 1 :])


@given(st.text(min_size=1), st.text())
def test_truncated_or_extended_signatures_fail(secret: str, body: str) -> None:
    signature = sign(secret, TS, body)
    assert not _verifies(secret, body, signature[:-1])
    assert not _verifies(secret, body, signature + "0")
    assert not _verifies(secret, body, "")


@given(st.text(min_size=1), st.text(), st.integers(0, 2**40))
def test_the_timestamp_is_signed(secret: str, body: str, other: int) -> None:
    assume(other != TS)
    assert not _verifies(secret, body, sign(secret, other, body))


def test_upper_case_hex_signature_is_the_same_signature() -> None:
    assert _verifies("s", "body", sign("s", TS, "body").upper())


def test_wrong_secret_fails() -> None:
    assert not _verifies("other", "body", sign("secret", TS, "body"))
