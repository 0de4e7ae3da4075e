"""The published JSON Schemas convey the contracts' strictness, and validate real documents.

Structural checks walk the schemas; validation uses the `jsonschema` package (a dev
dependency), as a non-Python publisher would.
"""

import copy
import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts import generate
from contracts.money import CURRENCY_EXPONENTS
from contracts.topics import TOPICS

EVENTS = [cls for topic in TOPICS for cls in topic.events]
SCHEMA_DIR = generate.HERE / generate.SCHEMA_DIR
jsonschema: Any = importlib.import_module("jsonschema")  # untyped


def load(event_type: str) -> dict[str, Any]:
    doc = json.loads((SCHEMA_DIR / f"{event_type}.json").read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def subschemas(node: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            if key not in ("examples", "default", "enum", "const"):
                yield from subschemas(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from subschemas(value, f"{where}/{i}")


def test_one_schema_file_per_event() -> None:
    assert sorted(p.stem for p in SCHEMA_DIR.glob("*.json")) == sorted(
        cls.type_name() for cls in EVENTS
    )


@pytest.mark.parametrize("cls", EVENTS, ids=lambda c: c.type_name())
def test_schema_header_and_envelope(cls: Any) -> None:
    schema = load(cls.type_name())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"urn:payflow:schema:{cls.type_name()}"
    assert schema["title"] and schema["description"]
    props = schema["properties"]
    assert props["event_type"]["const"] == cls.type_name()
    assert props["schema_version"]["enum"] == list(cls.SCHEMA_VERSIONS)
    assert props["schema_version"]["type"] == "integer"
    assert props["occurred_at"]["format"] == "date-time"
    assert props["event_id"]["format"] == "uuid"
    assert set(schema["required"]) == set(cls.model_fields) - {"causation_id"}


@pytest.mark.parametrize("cls", EVENTS, ids=lambda c: c.type_name())
def test_every_object_schema_forbids_unknown_properties(cls: Any) -> None:
    objects = [
        (w, s)
        for w, s in subschemas(load(cls.type_name()))
        if s.get("type") == "object" or "properties" in s
    ]
    assert objects
    for where, sub in objects:
        assert sub.get("additionalProperties") is False, where


@pytest.mark.parametrize("cls", EVENTS, ids=lambda c: c.type_name())
def test_money_and_currency_are_exact(cls: Any) -> None:
    schema = load(cls.type_name())
    for where, sub in subschemas(schema):
        if sub.get("title") == "Currency":
            assert sub["type"] == "string", where
            assert sub["pattern"] == "^[A-Z]{3}$", where
            assert sub["enum"] == sorted(CURRENCY_EXPONENTS), where
    money = schema.get("$defs", {}).get("Money")
    if money is None:
        return
    amount = money["properties"]["amount"]
    assert amount["type"] == "integer"
    assert amount["minimum"] == 0
    assert money["required"] == ["amount", "currency"]


def test_quantity_is_a_positive_integer() -> None:
    line = load("order.submitted")["$defs"]["OrderLine"]["properties"]["quantity"]
    assert (line["type"], line["exclusiveMinimum"]) == ("integer", 0)


@pytest.mark.parametrize("cls", EVENTS, ids=lambda c: c.type_name())
def test_every_ref_resolves(cls: Any) -> None:
    schema = load(cls.type_name())
    for where, sub in subschemas(schema):
        if "$ref" in sub:
            name = sub["$ref"].removeprefix("#/$defs/")
            assert name in schema["$defs"], where


@pytest.mark.parametrize("cls", EVENTS, ids=lambda c: c.type_name())
def test_example_is_the_generator_example(cls: Any) -> None:
    assert load(cls.type_name())["examples"] == [generate.example_documents()[cls.type_name()]]


# --- validation with jsonschema -------------------------------------------------------------


def validator(event_type: str) -> Any:
    schema = load(event_type)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("cls", EVENTS, ids=lambda c: c.type_name())
def test_examples_validate(cls: Any) -> None:
    check = validator(cls.type_name())
    for example in load(cls.type_name())["examples"]:
        check.validate(example)


def _put(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value


@pytest.mark.parametrize(
    ("event_type", "path", "value"),
    [
        ("order.submitted", "colour", "red"),
        ("order.submitted", "payload.items.0.colour", "red"),
        ("order.submitted", "payload.items.0.quantity", 0),
        ("order.submitted", "payload.items.0.quantity", True),
        ("order.submitted", "payload.currency", "XXX"),
        ("order.submitted", "payload.currency", "eur"),
        ("order.submitted", "payload.buyer_id", None),
        ("order.submitted", "event_type", None),
        ("order.submitted", "event_type", "order.built"),
        ("order.submitted", "schema_version", 2),
        ("order.built", "payload.total.amount", 1.5),
        ("order.built", "payload.total.amount", -1),
        ("order.built", "payload.total.amount", "2899"),
        ("order.built", "payload.total.currency", "XXX"),
    ],
)
def test_schemas_refuse_what_the_codec_refuses(event_type: str, path: str, value: Any) -> None:
    doc = copy.deepcopy(generate.example_documents()[event_type])
    _put(doc, path, value)
    assert not validator(event_type).is_valid(doc)


def test_schema_files_are_canonical_json() -> None:
    for path in sorted(Path(SCHEMA_DIR).glob("*.json")):
        text = path.read_text(encoding="utf-8")
        assert text == generate.json_text(json.loads(text)), path.name
