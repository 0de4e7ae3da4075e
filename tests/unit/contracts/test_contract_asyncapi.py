"""Sanity of contracts/asyncapi.yaml: complete, self-contained, consistent with the registry."""

import json
import tomllib
from typing import Any

import pytest
import yaml

from contracts import generate
from contracts.generate import published_dlq, published_name
from contracts.topics import (
    GATEWAY_CALLBACKS,
    ORDERS_OUTCOMES,
    ORDERS_REFUNDS,
    ORDERS_SUBMITTED,
    TOPICS,
    WALLET_OUTCOMES,
    WALLET_REQUESTS,
)

DLQ_HEADERS = (
    "payflow-dlq-reason",
    "payflow-dlq-detail",
    "payflow-dlq-source-topic",
    "payflow-dlq-source-partition",
    "payflow-dlq-source-offset",
    "payflow-dlq-failed-at",
    "payflow-dlq-attempts",
    "payflow-dlq-stage",
)


# The documents name topics in the default namespace, whatever this session's namespace is.
PUBLISHED = {published_name(t) for t in TOPICS} | {
    published_dlq(t) for t in TOPICS if t.consumed_by
}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    loaded = yaml.safe_load((generate.HERE / generate.ASYNCAPI_FILE).read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} points outside the document"
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def channel_by_address(doc: dict[str, Any], address: str) -> dict[str, Any]:
    found = [c for c in doc["channels"].values() if c["address"] == address]
    assert len(found) == 1, address
    channel: dict[str, Any] = found[0]
    return channel


def test_header(doc: dict[str, Any]) -> None:
    with open(generate.HERE.parent / "pyproject.toml", "rb") as fh:
        version = tomllib.load(fh)["project"]["version"]
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] == "payflow"
    assert doc["info"]["version"] == version
    assert doc["servers"]["local"] == {
        "host": "127.0.0.1:19092",
        "protocol": "kafka",
        "description": "Local development broker.",
    }


def test_every_topic_and_dead_letter_topic_is_a_channel(doc: dict[str, Any]) -> None:
    addresses = [c["address"] for c in doc["channels"].values()]
    assert len(addresses) == len(set(addresses))
    assert set(addresses) == PUBLISHED
    for topic in TOPICS:
        assert published_name(topic) in addresses
        assert (published_dlq(topic) in addresses) == (topic.consumed_by is not None)


def test_every_event_has_a_message_on_its_channel(doc: dict[str, Any]) -> None:
    messages = doc["components"]["messages"]
    for topic in TOPICS:
        channel = channel_by_address(doc, published_name(topic))
        assert set(channel["messages"]) == {cls.__name__ for cls in topic.events}
        for cls in topic.events:
            message = resolve(doc, channel["messages"][cls.__name__]["$ref"])
            assert message is messages[cls.__name__] or message == messages[cls.__name__]
            assert message["name"] == cls.type_name()
            assert message["contentType"] == "application/json"
            key = message["bindings"]["kafka"]["key"]
            assert key["type"] == "string" and "order id (correlation_id)" in key["description"]
            schema = resolve(doc, message["payload"]["$ref"])
            assert schema["properties"]["event_type"]["const"] == cls.type_name()


def test_every_ref_resolves_inside_the_document(doc: dict[str, Any]) -> None:
    found = refs(doc)
    assert len(found) > 50
    for ref in found:
        resolve(doc, ref)


def test_components_embed_the_published_json_schemas(doc: dict[str, Any]) -> None:
    components = doc["components"]["schemas"]
    for topic in TOPICS:
        for cls in topic.events:
            path = generate.HERE / generate.SCHEMA_DIR / f"{cls.type_name()}.json"
            published = json.loads(path.read_text(encoding="utf-8"))
            for name, sub in published.pop("$defs", {}).items():
                assert components[name] == generate.rewrite_refs(sub), name
            for key in ("$schema", "$id"):
                published.pop(key)
            assert components[cls.__name__] == generate.rewrite_refs(published), cls.__name__


def test_operations(doc: dict[str, Any]) -> None:
    by_address: dict[str, list[dict[str, Any]]] = {}
    for op in doc["operations"].values():
        channel = resolve(doc, op["channel"]["$ref"])
        by_address.setdefault(channel["address"], []).append(op)
        for message_ref in op["messages"]:
            # AsyncAPI 3: an operation's messages must be messages of its channel.
            assert message_ref["$ref"].startswith(op["channel"]["$ref"] + "/messages/")
            resolve(doc, message_ref["$ref"])
    assert set(by_address) == PUBLISHED
    assert [op["action"] for op in by_address[published_name(ORDERS_SUBMITTED)]] == ["send"]
    assert [op["action"] for op in by_address[published_name(GATEWAY_CALLBACKS)]] == ["send"]
    assert [op["action"] for op in by_address[published_name(ORDERS_OUTCOMES)]] == ["receive"]
    assert [op["action"] for op in by_address[published_name(WALLET_REQUESTS)]] == ["send"]
    assert [op["action"] for op in by_address[published_name(WALLET_OUTCOMES)]] == ["receive"]
    for topic in TOPICS:
        tags = [t["name"] for op in by_address[published_name(topic)] for t in op["tags"]]
        upstream = topic in (
            ORDERS_SUBMITTED,
            GATEWAY_CALLBACKS,
            ORDERS_OUTCOMES,
            ORDERS_REFUNDS,
            WALLET_REQUESTS,
            WALLET_OUTCOMES,
        )
        assert tags == (["upstream"] if upstream else ["internal"])


def test_dead_letter_channels_document_the_headers(doc: dict[str, Any]) -> None:
    for topic in TOPICS:
        if topic.consumed_by is None:
            continue
        channel = channel_by_address(doc, published_dlq(topic))
        for header in DLQ_HEADERS:
            assert f"`{header}`" in channel["description"], (published_dlq(topic), header)
        message = resolve(doc, channel["messages"]["DeadLetter"]["$ref"])
        assert list(message["headers"]["properties"]) == list(DLQ_HEADERS)


def test_gateway_signature_is_documented(doc: dict[str, Any]) -> None:
    text = channel_by_address(doc, published_name(GATEWAY_CALLBACKS))["description"]
    for words in ("header-less", "raw_body", "signature", "lowercase hex HMAC-SHA256"):
        assert words in text
