"""Every event round-trips through the codec; everything else is refused with a precise reason."""

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from contracts.codec import ContractError, decode, encode
from contracts.generate import EXAMPLE_SECRET, example_documents
from contracts.signing import sign, verify
from contracts.topics import FUNDS_FROZEN, ORDERS_BUILT, ORDERS_SUBMITTED, TOPICS, topic_for

Doc = dict[str, Any]
# Runtime names: the test session has its own topic namespace (tests/conftest.py).
SUBMITTED = ORDERS_SUBMITTED.name
BUILT = ORDERS_BUILT.name
EXAMPLES = example_documents()
ALL_EVENTS = [cls for topic in TOPICS for cls in topic.events]


@pytest.mark.parametrize("cls", ALL_EVENTS, ids=lambda c: c.type_name())
def test_example_round_trips(cls: Any) -> None:
    topic = topic_for(cls).name
    doc = EXAMPLES[cls.type_name()]
    event = decode(topic, json.dumps(doc).encode())
    assert type(event) is cls
    raw = encode(event)
    assert json.loads(raw) == doc  # the examples are already in canonical form
    assert decode(topic, raw) == event


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return mutate


_DELETE = object()

# (topic, mutation, expected code, text the detail must contain)
REFUSALS: dict[str, tuple[str, Callable[[Doc], None], str, str]] = {
    "unknown field": (SUBMITTED, _set("colour", "red"), "invalid_event", "colour"),
    "unknown nested field": (
        SUBMITTED,
        _set("payload.items.0.colour", "red"),
        "invalid_event",
        "payload.items.0.colour",
    ),
    "wrong type": (SUBMITTED, _set("payload.buyer_id", 42), "invalid_event", "payload.buyer_id"),
    "missing field": (
        SUBMITTED,
        _set("payload.buyer_id", _DELETE),
        "invalid_event",
        "payload.buyer_id",
    ),
    "missing envelope field": (SUBMITTED, _set("event_id", _DELETE), "invalid_event", "event_id"),
    "float amount": (
        BUILT,
        _set("payload.total.amount", 1.5),
        "invalid_event",
        "payload.total.amount",
    ),
    "integral float amount": (
        BUILT,
        _set("payload.total.amount", 100.0),
        "invalid_event",
        "payload.total.amount",
    ),
    "negative amount": (
        BUILT,
        _set("payload.total.amount", -1),
        "invalid_event",
        "payload.total.amount",
    ),
    "string amount": (
        BUILT,
        _set("payload.total.amount", "2899"),
        "invalid_event",
        "payload.total.amount",
    ),
    "bool amount": (
        BUILT,
        _set("payload.total.amount", True),
        "invalid_event",
        "payload.total.amount",
    ),
    "zero quantity": (
        SUBMITTED,
        _set("payload.items.0.quantity", 0),
        "invalid_event",
        "payload.items.0.quantity",
    ),
    "negative quantity": (
        SUBMITTED,
        _set("payload.items.0.quantity", -2),
        "invalid_event",
        "payload.items.0.quantity",
    ),
    "bool quantity": (
        SUBMITTED,
        _set("payload.items.0.quantity", True),
        "invalid_event",
        "payload.items.0.quantity",
    ),
    "bool schema_version": (
        SUBMITTED,
        _set("schema_version", True),
        "invalid_event",
        "schema_version",
    ),
    "unknown currency": (
        SUBMITTED,
        _set("payload.currency", "XXX"),
        "invalid_event",
        "payload.currency",
    ),
    "unknown money currency": (
        BUILT,
        _set("payload.total.currency", "XXX"),
        "invalid_event",
        "payload.total.currency",
    ),
    "lowercase currency": (
        SUBMITTED,
        _set("payload.currency", "eur"),
        "invalid_event",
        "payload.currency",
    ),
    "event type of another topic": (
        SUBMITTED,
        _set("event_type", "order.built"),
        "unknown_event_type",
        "event_type",
    ),
    "unknown event type": (
        SUBMITTED,
        _set("event_type", "order.exploded"),
        "unknown_event_type",
        "event_type",
    ),
    "missing event type": (
        SUBMITTED,
        _set("event_type", _DELETE),
        "unknown_event_type",
        "event_type",
    ),
    "unhashable event type": (
        SUBMITTED,
        _set("event_type", ["order.submitted"]),
        "unknown_event_type",
        "event_type",
    ),
    "schema_version 2": (
        SUBMITTED,
        _set("schema_version", 2),
        "unsupported_schema_version",
        "schema_version",
    ),
    "string schema_version": (
        SUBMITTED,
        _set("schema_version", "1"),
        "unsupported_schema_version",
        "schema_version",
    ),
    "correlation_id is not the order id": (
        SUBMITTED,
        _set("correlation_id", "ord-9999"),
        "invalid_event",
        "correlation_id",
    ),
    "naive datetime": (
        SUBMITTED,
        _set("occurred_at", "2025-01-15T10:00:00"),
        "invalid_event",
        "occurred_at",
    ),
    "naive nested datetime": (
        FUNDS_FROZEN.name,
        _set("payload.hold_expires_at", "2025-01-15T10:15:00"),
        "invalid_event",
        "payload.hold_expires_at",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusal(case: str) -> None:
    topic, mutate, code, field = REFUSALS[case]
    cls = next(c for t in TOPICS if t.name == topic for c in t.events)
    doc = copy.deepcopy(EXAMPLES[cls.type_name()])
    mutate(doc)
    with pytest.raises(ContractError) as info:
        decode(topic, json.dumps(doc).encode())
    assert info.value.code == code
    assert field in info.value.detail


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (None, "empty_message"),
        (b"", "empty_message"),
        (b"\x00\xff not json", "not_json"),
        (b'{"event_type": ', "not_json"),
        ("{}".encode("utf-16"), "not_json"),
        (b"[" * 100_000 + b"]" * 100_000, "not_json"),
        (b"[]", "not_an_object"),
        (b'[{"event_type": "order.submitted"}]', "not_an_object"),
        (b'"order.submitted"', "not_an_object"),
        (b"null", "not_an_object"),
        (b"42", "not_an_object"),
    ],
    ids=[
        "none",
        "empty",
        "binary",
        "truncated",
        "utf16",
        "deep",
        "array",
        "array of object",
        "string",
        "null",
        "number",
    ],
)
def test_refusal_of_non_objects(raw: bytes | None, code: str) -> None:
    with pytest.raises(ContractError) as info:
        decode(SUBMITTED, raw)
    assert info.value.code == code


def test_unknown_topic() -> None:
    with pytest.raises(ContractError) as info:
        decode("payflow.nowhere", json.dumps(EXAMPLES["order.submitted"]).encode())
    assert info.value.code == "unknown_topic"
    assert "payflow.nowhere" in info.value.detail


def test_100_0_is_refused_even_as_raw_json_text() -> None:
    raw = json.dumps(EXAMPLES["order.built"]).replace('"amount": 2899', '"amount": 2899.0')
    assert "2899.0" in raw
    with pytest.raises(ContractError) as info:
        decode(BUILT, raw.encode())
    assert info.value.code == "invalid_event"
    assert "payload.total.amount" in info.value.detail


@pytest.mark.parametrize("sent", ["XXX", "eur", 978])
def test_an_unknown_currency_is_named_with_what_was_sent(sent: object) -> None:
    doc = json.loads(json.dumps(EXAMPLES["order.built"]))
    doc["payload"]["sub_orders"][0]["amount"]["currency"] = sent
    with pytest.raises(ContractError) as info:
        decode(BUILT, json.dumps(doc).encode())
    assert info.value.code == "invalid_event"
    assert info.value.detail == (
        f"order.built: payload.sub_orders.0.amount.currency: unknown ISO 4217 currency {sent!r}"
    )


def test_docs_examples_are_valid() -> None:
    text = (Path(__file__).parents[3] / "docs" / "contracts.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.S)
    assert blocks, "docs/contracts.md has no JSON example"
    for block in blocks:
        doc = json.loads(block)
        assert decode(SUBMITTED, block.encode()).event_type == doc["event_type"]
    body, signature = re.findall(r"```text\n(.*?)\n```", text, flags=re.S)[:2]
    assert EXAMPLE_SECRET in text
    callback = EXAMPLES["gateway.callback_received"]["payload"]
    timestamp, key_id = callback["timestamp"], callback["key_id"]
    assert str(timestamp) in text  # the docs say what was signed: "<timestamp>.<body>"
    assert sign(EXAMPLE_SECRET, timestamp, body) == signature
    assert (callback["raw_body"], callback["signature"]) == (body, signature)
    refusal = verify(
        {key_id: EXAMPLE_SECRET}, key_id, timestamp, body, signature, now=timestamp, tolerance_s=0
    )
    assert refusal is None
