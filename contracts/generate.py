"""Write the published contract documents from the pydantic models.

    python -m contracts.generate          # write contracts/schemas/*.json and contracts/asyncapi.yaml
    python -m contracts.generate --check  # exit 1, listing stale files, if the checked-in ones differ

The output is deterministic (sorted keys, fixed indentation, fixed examples) so that a
change to a contract shows up as a reviewable diff.
"""

import argparse
import copy
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

from contracts.codec import decode
from contracts.envelope import Envelope, derived_event_id
from contracts.signing import sign
from contracts.topics import (
    DEFAULT_NAMESPACE,
    DLQ_SUFFIX,
    GATEWAY_CALLBACKS,
    ORDERS_OUTCOMES,
    ORDERS_REFUNDS,
    ORDERS_SUBMITTED,
    PARTITION_KEY,
    TOPICS,
    WALLET_OUTCOMES,
    WALLET_REQUESTS,
    Topic,
)

HERE = Path(__file__).resolve().parent
SCHEMA_DIR = "schemas"
ASYNCAPI_FILE = "asyncapi.yaml"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
KAFKA_BINDING = "0.5.0"
EXAMPLE_SECRET = "example-gateway-secret"

JsonDict = dict[str, Any]

# Who publishes where, seen from an upstream system (a shop or a payment gateway).
UPSTREAM_ACTIONS: dict[str, str] = {
    ORDERS_SUBMITTED.base: "send",
    GATEWAY_CALLBACKS.base: "send",
    ORDERS_OUTCOMES.base: "receive",
    WALLET_REQUESTS.base: "send",
    ORDERS_REFUNDS.base: "send",
    WALLET_OUTCOMES.base: "receive",
}


def published_name(topic: Topic) -> str:
    """The name the documents give a topic: always in the default namespace, whatever
    PAYFLOW_TOPIC_NAMESPACE says, so the output does not depend on the environment."""
    return f"{DEFAULT_NAMESPACE}.{topic.base}"


def published_dlq(topic: Topic) -> str:
    return published_name(topic) + DLQ_SUFFIX


DLQ_HEADERS: tuple[tuple[str, str, JsonDict], ...] = (
    (
        "payflow-dlq-reason",
        "Stable, machine-readable reason code, e.g. a codec refusal "
        "(not_json, not_an_object, empty_message, unknown_event_type, "
        "unsupported_schema_version, invalid_event) or a stage's own code.",
        {},
    ),
    ("payflow-dlq-detail", "Human-readable detail; names the offending field.", {}),
    ("payflow-dlq-source-topic", "Topic the message was read from.", {}),
    (
        "payflow-dlq-source-partition",
        "Partition it was read from (decimal).",
        {"pattern": "^[0-9]+$"},
    ),
    ("payflow-dlq-source-offset", "Offset it was read at (decimal).", {"pattern": "^[0-9]+$"}),
    (
        "payflow-dlq-failed-at",
        "When it was dead-lettered (ISO 8601 with offset).",
        {"format": "date-time"},
    ),
    (
        "payflow-dlq-attempts",
        "How many times processing was attempted (decimal).",
        {"pattern": "^[1-9][0-9]*$"},
    ),
    ("payflow-dlq-stage", "The payflow stage that refused it (e.g. order_build).", {}),
)

ENVELOPE_FIELD_DOCS: dict[str, str] = {
    "event_id": "Unique per event (UUID). A redelivered event keeps its event_id.",
    "event_type": "Names the event; a topic accepts only the event types listed for it.",
    "schema_version": "Version of this event's schema; only the listed versions are accepted.",
    "occurred_at": "RFC 3339 / ISO 8601 date-time WITH a timezone offset; naive times are refused.",
    "idempotency_key": "Same key = same business request: republishing an order with the same "
    "key is safe and is processed once.",
}
AMOUNT_DOC = (
    "Integer number of minor units (cents for EUR, yen for JPY). A JSON number with a "
    "fraction or exponent (1.5, 100.0, 1e2) is refused, as are negative numbers and booleans."
)


def events() -> list[tuple[Topic, type[Envelope]]]:
    return [(topic, cls) for topic in TOPICS for cls in topic.events]


def describe(topic: Topic, cls: type[Envelope]) -> str:
    doc = " ".join((cls.__doc__ or topic.description).split())
    return (
        f"{doc} Carried on {published_name(topic)}, keyed by the correlation id "
        f"({PARTITION_KEY}: the order id, or the wallet operation id)."
    )


# --- examples (fixed values, so the output is stable) ---------------------------------------

_ORDER = "ord-1001"
_AT = "2025-01-15T10:00:00Z"


def _money(amount: int) -> JsonDict:
    return {"amount": amount, "currency": "EUR"}


def _envelope(
    event_type: str, payload: JsonDict, cause: JsonDict | None, correlation: str = _ORDER
) -> JsonDict:
    if cause is None:
        event_id, key = "0b7f3c1e-9a0d-4c55-8f43-2d1e6a7b9c10", f"shop-7:{correlation}"
    else:
        event_id = str(derived_event_id(cause["event_id"], event_type))
        key = f"{cause['idempotency_key']}/{event_type}"
    return {
        "event_id": event_id,
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": _AT,
        "correlation_id": correlation,
        "causation_id": cause["event_id"] if cause else None,
        "idempotency_key": key,
        "payload": payload,
    }


def _sub_orders() -> list[JsonDict]:
    def line(sku: str, qty: int, unit: int) -> JsonDict:
        return {
            "sku_id": sku,
            "quantity": qty,
            "unit_price": _money(unit),
            "line_total": _money(qty * unit),
        }

    return [
        {
            "sub_order_id": "ord-1001-1",
            "merchant_id": "mer-1",
            "warehouse_id": "wh-ams",
            "subtotal": _money(2500),
            "discount": _money(500),
            "platform_discount": _money(500),
            "amount": _money(2000),
            "lines": [line("sku-red-mug", 2, 1250)],
        },
        {
            "sub_order_id": "ord-1001-2",
            "merchant_id": "mer-2",
            "warehouse_id": "wh-ber",
            "subtotal": _money(899),
            "discount": _money(0),
            "platform_discount": _money(0),
            "amount": _money(899),
            "lines": [line("sku-tea-500g", 1, 899)],
        },
    ]


def example_documents() -> dict[str, JsonDict]:
    """One valid JSON document per event type, as it travels on its topic."""
    submitted = _envelope(
        "order.submitted",
        {
            "order_id": _ORDER,
            "buyer_id": "buyer-42",
            "currency": "EUR",
            "items": [
                {"sku_id": "sku-red-mug", "quantity": 2},
                {"sku_id": "sku-tea-500g", "quantity": 1},
            ],
            "coupon_codes": ["WELCOME5"],
            "payment_preference": "wallet_first",
            "payment_method": "card",
        },
        None,
    )
    split = {"total": _money(2899), "wallet_part": _money(1000), "gateway_part": _money(1899)}
    built = _envelope(
        "order.built",
        {
            "order_id": _ORDER,
            "buyer_id": "buyer-42",
            "payment_preference": "wallet_first",
            "payment_method": "card",
            "subtotal": _money(3399),
            "discount": _money(500),
            "total": _money(2899),
            "sub_orders": _sub_orders(),
            "coupon_codes": ["WELCOME5"],
        },
        submitted,
    )
    frozen = _envelope(
        "funds.frozen",
        {
            "order_id": _ORDER,
            "transaction_id": "txn-1001",
            "buyer_id": "buyer-42",
            **split,
            "hold_expires_at": "2025-01-15T10:15:00Z",
            "payment_method": "card",
            "sub_orders": _sub_orders(),
        },
        built,
    )
    body = json.dumps(
        {
            "callback_id": "cb-9001",
            "gateway_ref": "acme-77",
            "payment_id": "pay-txn-1001",
            "status": "succeeded",
            "amount": _money(1899),
            "failure_reason": None,
            "occurred_at": "2025-01-15T10:01:00Z",
        },
        separators=(",", ":"),
    )
    callback = _envelope(
        "gateway.callback_received",
        {
            "provider": "direct",
            "raw_body": body,
            "key_id": "k1",
            "timestamp": 1736935260,
            "signature": sign(EXAMPLE_SECRET, 1736935260, body),
            "received_at": "2025-01-15T10:01:01Z",
        },
        None,
    ) | {
        "event_id": "5c2a8e4f-1b3d-4f6a-9e7c-8d9b0a1c2e3f",
        "idempotency_key": "direct:cb-9001",
        "occurred_at": "2025-01-15T10:01:01Z",
    }
    decision = {
        "order_id": _ORDER,
        "transaction_id": "txn-1001",
        "buyer_id": "buyer-42",
        **split,
        "gateway_ref": "acme-77",
        "reason_code": None,
        "detail": None,
    }
    succeeded = _envelope("payment.succeeded", decision, frozen)
    failed = _envelope(
        "payment.failed",
        decision | {"reason_code": "declined", "detail": "the gateway declined the payment"},
        frozen,
    )
    review = _envelope(
        "payment.needs_review",
        decision
        | {
            "reason_code": "amount_mismatch",
            "detail": "gateway paid 1800 EUR, expected 1899 EUR",
        },
        frozen,
    )

    def payout(sub: str, merchant: str, gross: int, fee: int) -> JsonDict:
        return {
            "sub_order_id": sub,
            "merchant_id": merchant,
            "gross": _money(gross),
            "fee": _money(fee),
            "net": _money(gross - fee),
        }

    settled = _envelope(
        "order.settled",
        {
            "order_id": _ORDER,
            "transaction_id": "txn-1001",
            **split,
            "payouts": [
                payout("ord-1001-1", "mer-1", 2000, 12),
                payout("ord-1001-2", "mer-2", 899, 5),
            ],
        },
        succeeded,
    )

    def closed(stage: str, code: str, detail: str) -> JsonDict:
        return {"order_id": _ORDER, "stage": stage, "reason_code": code, "detail": detail}

    docs = [
        submitted,
        built,
        frozen,
        callback,
        succeeded,
        failed,
        review,
        settled,
        _envelope("order.cancelled", closed("callback", "declined", "payment declined"), failed),
        _envelope(
            "order.rejected", closed("order_build", "unknown_sku", "sku-tea-500g"), submitted
        ),
        _envelope(
            "order.manual_review", closed("callback", "amount_mismatch", "1800 != 1899"), review
        ),
        _duplicate_example(submitted),
        _submission_refused_example(submitted),
    ]
    refund = _envelope(
        "order.refund_requested",
        {
            "refund_id": "rf-1",
            "order_id": _ORDER,
            "sub_order_id": "ord-1001-1",
            "amount": _money(1250),
            "items": [{"sku_id": "sku-mug", "quantity": 1}],
            "restock": False,
            "reason": "one mug arrived broken",
        },
        None,
    )
    refunded = {"order_id": _ORDER, "refund_id": "rf-1", "sub_order_id": "ord-1001-1"}
    docs += [
        refund,
        _envelope(
            "order.refunded",
            refunded | {"amount": _money(1250), "to_wallet": _money(250), "to_card": _money(1000)},
            refund,
        ),
        _envelope(
            "order.refund_rejected",
            {
                "order_id": _ORDER,
                "refund_id": "rf-1",
                "reason_code": "exceeds_captured",
                "detail": "1250 asked, 750 of sub-order ord-1001-1 refundable",
            },
            refund,
        ),
    ]
    late = {
        "order_id": _ORDER,
        "wallet_operation_id": None,
        "payment_id": "pay-ord-1001-1",
        "gateway_ref": "acme-91",
        "refund_id": "late:acme-91",
        "amount": _money(899),
        "reason": "late_success",
        "action": "refund_requested",
        "detail": "order ord-1001 is cancelled",
    }
    docs.append(_envelope("payment.late_money", late, failed))
    return {d["event_type"]: d for d in docs + _wallet_examples()}


def _duplicate_example(submitted: JsonDict) -> JsonDict:
    """The shop sent ord-1001's cart again under its key, as a new order id ord-1002."""
    again = "ord-1002"
    retry = submitted | {
        "event_id": "7d4e2b9a-3c1f-4e8d-b6a5-1f0e9d8c7b6a",
        "correlation_id": again,
        "payload": submitted["payload"] | {"order_id": again},
    }
    payload = {
        "order_id": again,
        "original_order_id": _ORDER,
        "idempotency_key": submitted["idempotency_key"],
    }
    return _envelope("order.duplicate", payload, retry, again)


def _submission_refused_example(submitted: JsonDict) -> JsonDict:
    """The shop sent ord-1001 again under the same key with another cart: the submission is
    refused (order_id_conflict) and ord-1001 goes on unchanged."""
    other = submitted | {
        "event_id": "3a9c6e1d-8b2f-4d7a-a5e4-6c0b1f2d3e4a",
        "payload": submitted["payload"] | {"items": [{"sku_id": "sku-red-mug", "quantity": 5}]},
    }
    payload = {
        "order_id": _ORDER,
        "reason_code": "order_id_conflict",
        "detail": f"order {_ORDER} was already submitted with other content; this submission "
        "was refused and the existing order goes on unchanged",
        "idempotency_key": other["idempotency_key"],
        "refused_event_id": other["event_id"],
        "original_order_id": _ORDER,
    }
    return _envelope("order.submission_refused", payload, other)


def _wallet_examples() -> list[JsonDict]:
    top_up_id, withdrawal_id = "top-5001", "wd-6001"
    top_up = {"operation_id": top_up_id, "buyer_id": "buyer-42", "amount": _money(5000)}
    withdrawal = {
        "operation_id": withdrawal_id,
        "buyer_id": "buyer-42",
        "amount": _money(2500),
        "destination": "iban-NL00BANK0123456789",
    }
    requested = _envelope("wallet.topup_requested", top_up, None, top_up_id)
    result = _envelope(
        "wallet.topup_gateway_result",
        top_up | {"status": "succeeded", "gateway_ref": "acme-88", "detail": None},
        requested,
        top_up_id,
    )
    asked = _envelope("wallet.withdrawal_requested", withdrawal, None, withdrawal_id)
    frozen = _envelope("wallet.withdrawal_frozen", withdrawal, asked, withdrawal_id)

    def closed(op: JsonDict, kind: str, code: str | None, detail: str | None) -> JsonDict:
        base = {k: op[k] for k in ("operation_id", "buyer_id", "amount")}
        return base | {"kind": kind, "reason_code": code, "detail": detail}

    return [
        requested,
        result,
        asked,
        frozen,
        _envelope(
            "wallet.operation_completed", closed(top_up, "top_up", None, None), result, top_up_id
        ),
        _envelope(
            "wallet.operation_failed",
            closed(withdrawal, "withdrawal", "payout_declined", "account closed"),
            frozen,
            withdrawal_id,
        ),
        _envelope(
            "wallet.operation_needs_review",
            closed(top_up, "top_up", "amount_mismatch", "gateway reports 50.01 EUR"),
            result,
            top_up_id,
        ),
    ]


# --- JSON Schema ------------------------------------------------------------------------------


def event_schema(topic: Topic, cls: type[Envelope], example: JsonDict) -> JsonDict:
    schema = cls.model_json_schema()
    props: JsonDict = schema["properties"]
    props["event_type"].pop("default", None)
    props["schema_version"]["enum"] = list(cls.SCHEMA_VERSIONS)
    for name, doc in ENVELOPE_FIELD_DOCS.items():
        props[name]["description"] = doc
    # decode() dispatches on event_type, so it is required even though the model defaults it.
    schema["required"] = [
        f for f in cls.model_fields if f in schema["required"] or f == "event_type"
    ]
    money = schema.get("$defs", {}).get("Money")
    if money is not None:
        money["properties"]["amount"]["description"] = AMOUNT_DOC
    head = {
        "$schema": DIALECT,
        "$id": f"urn:payflow:schema:{cls.type_name()}",
        "title": f"{cls.__name__} ({cls.type_name()})",
        "description": describe(topic, cls),
    }
    return schema | head | {"examples": [example]}


def json_text(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def event_schemas() -> dict[str, JsonDict]:
    examples = example_documents()
    out: dict[str, JsonDict] = {}
    for topic, cls in events():
        example = examples[cls.type_name()]
        decode(topic.name, json.dumps(example).encode())  # the example must itself be valid
        out[cls.type_name()] = event_schema(topic, cls, example)
    return out


# --- AsyncAPI ---------------------------------------------------------------------------------


def channel_id(topic_name: str) -> str:
    words = topic_name.removeprefix(f"{DEFAULT_NAMESPACE}.").replace("_", ".").split(".")
    return words[0] + "".join(w.capitalize() for w in words[1:])


def rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (v.replace("#/$defs/", "#/components/schemas/") if k == "$ref" else rewrite_refs(v))
            for k, v in sorted(node.items())
        }
    if isinstance(node, list):
        return [rewrite_refs(v) for v in node]
    return node


# Inline, not a $ref: the kafka binding's JSON Schema (oneOf Reference | Schema) rejects a $ref.
KEY_SCHEMA: JsonDict = {
    "type": "string",
    "minLength": 1,
    "maxLength": 64,
    "pattern": "^[A-Za-z0-9][A-Za-z0-9._:\\-]*$",
    "description": f"The order id ({PARTITION_KEY}), UTF-8: all of one order's events share it.",
}


def _components_schemas(schemas: dict[str, JsonDict]) -> JsonDict:
    out: JsonDict = {}
    for _, cls in events():
        body = copy.deepcopy(schemas[cls.type_name()])
        for name, sub in body.pop("$defs", {}).items():
            sub = rewrite_refs(sub)
            if out.setdefault(name, sub) != sub:
                raise RuntimeError(f"two different schemas are both named {name}")
        for key in ("$schema", "$id"):
            body.pop(key)
        out[cls.__name__] = rewrite_refs(body)
    return dict(sorted(out.items()))


def _dead_letter_message() -> JsonDict:
    headers = {
        name: {"type": "string", "description": doc, **extra} for name, doc, extra in DLQ_HEADERS
    }
    return {
        "name": "dead_letter",
        "title": "Dead letter",
        "summary": "A message a payflow stage could not process, unchanged, with the reason.",
        "contentType": "application/octet-stream",
        "headers": {"type": "object", "required": list(headers), "properties": headers},
        "payload": {
            "description": "The original message value, byte for byte. It may be "
            "invalid JSON or violate the source topic's contract: that is why it is here."
        },
        "bindings": {"kafka": {"key": KEY_SCHEMA, "bindingVersion": KAFKA_BINDING}},
    }


def _dlq_description(topic: Topic) -> str:
    lines = [
        f"Dead letters of {published_name(topic)}: messages the {topic.consumed_by} stage refused or could "
        "not process after retries. The value and key are the original ones; these headers "
        "(UTF-8 strings) say why:",
        "",
    ]
    lines += [f"- `{name}`: {doc}" for name, doc, _ in DLQ_HEADERS]
    return "\n".join(lines) + "\n"


def _channel_description(topic: Topic) -> str:
    kinds = ", ".join(f"`{cls.type_name()}`" for cls in topic.events)
    text = f"{topic.description} Carries {kinds}. Key: the order id ({PARTITION_KEY})."
    if topic is GATEWAY_CALLBACKS:
        text += (
            " The envelope itself is unsigned and header-less: payload.raw_body is the exact "
            "JSON text the gateway signed and payload.signature is lowercase hex "
            "HMAC-SHA256(shared secret, raw_body as UTF-8)."
        )
    return text


def _operation(topic: Topic, cid: str, action: str, tag: str, summary: str) -> JsonDict:
    messages = ["DeadLetter"] if tag == "dead-letter" else [c.__name__ for c in topic.events]
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{cid}"},
        "summary": summary,
        "tags": [{"name": tag}],
        "messages": [{"$ref": f"#/channels/{cid}/messages/{m}"} for m in messages],
    }


def _channels_and_operations() -> tuple[JsonDict, JsonDict]:
    channels: JsonDict = {}
    operations: JsonDict = {}
    for topic in TOPICS:
        name = published_name(topic)
        cid = channel_id(name)
        channels[cid] = {
            "address": name,
            "title": name,
            "description": _channel_description(topic),
            "messages": {
                c.__name__: {"$ref": f"#/components/messages/{c.__name__}"} for c in topic.events
            },
        }
        action = UPSTREAM_ACTIONS.get(topic.base)
        if action == "send":
            operations[f"send{cid[0].upper()}{cid[1:]}"] = _operation(
                topic, cid, "send", "upstream", f"Upstream systems publish to {name}."
            )
        elif action == "receive":
            operations[f"receive{cid[0].upper()}{cid[1:]}"] = _operation(
                topic, cid, "receive", "upstream", f"Upstream systems consume {name}."
            )
        else:
            operations[f"observe{cid[0].upper()}{cid[1:]}"] = _operation(
                topic,
                cid,
                "receive",
                "internal",
                f"Internal: published and consumed by payflow ({topic.consumed_by}); "
                "may be read for diagnostics, never published to from outside.",
            )
        if topic.consumed_by:
            dlq = cid + "Dlq"
            channels[dlq] = {
                "address": published_dlq(topic),
                "title": published_dlq(topic),
                "description": _dlq_description(topic),
                "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
            }
            operations[f"receive{dlq[0].upper()}{dlq[1:]}"] = _operation(
                topic,
                dlq,
                "receive",
                "dead-letter",
                f"Operators and upstream owners read why a message on {name} was refused.",
            )
    return channels, operations


INFO_DESCRIPTION = """\
Message contracts of payflow, a Kafka + Postgres payment engine. Operations are written from
the point of view of an upstream system: shops send to payflow.orders.submitted, payment
gateways send to payflow.gateway.callbacks, and both receive payflow.orders.outcomes. The
other topics are internal to payflow and tagged as such. Topic names are shown in the default
namespace "payflow"; an environment may use another prefix (PAYFLOW_TOPIC_NAMESPACE).

Every message value is one JSON object, an envelope: event_id (UUID, unique per event),
event_type, schema_version, occurred_at (ISO 8601 with a timezone offset), correlation_id
(the order id; it must equal payload.order_id and is also the Kafka key), causation_id,
idempotency_key (same key = same order: redelivery is safe) and payload. Unknown fields are
refused at every level and no value is coerced (no "1" for 1, no 1.0 for 1).

Money is always {"amount": <integer minor units>, "currency": <ISO 4217 code>}: 12.34 EUR
is {"amount": 1234, "currency": "EUR"}. Floats (even 100.0), negative amounts and unlisted
or lowercase currency codes are refused.

A message that is refused is copied, unchanged, to the topic's .dlq dead-letter topic with
payflow-dlq-* headers explaining why. Gateway callbacks are signed: payload.signature is
lowercase hex HMAC-SHA256(shared secret, payload.raw_body).
"""


def asyncapi_document(schemas: dict[str, JsonDict]) -> JsonDict:
    with open(HERE.parent / "pyproject.toml", "rb") as fh:
        version = str(tomllib.load(fh)["project"]["version"])
    channels, operations = _channels_and_operations()
    messages: JsonDict = {"DeadLetter": _dead_letter_message()}
    for topic, cls in events():
        messages[cls.__name__] = {
            "name": cls.type_name(),
            "title": cls.__name__,
            "summary": describe(topic, cls),
            "contentType": "application/json",
            "correlationId": {"$ref": "#/components/correlationIds/OrderId"},
            "payload": {"$ref": f"#/components/schemas/{cls.__name__}"},
            "bindings": {"kafka": {"key": KEY_SCHEMA, "bindingVersion": KAFKA_BINDING}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "payflow", "version": version, "description": INFO_DESCRIPTION},
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:19092",
                "protocol": "kafka",
                "description": "Local development broker.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": _components_schemas(schemas),
            "messages": dict(sorted(messages.items())),
            "correlationIds": {
                "OrderId": {
                    "description": "The order id, shared by every event of one order.",
                    "location": f"$message.payload#/{PARTITION_KEY}",
                }
            },
        },
    }


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_representer)


def yaml_text(doc: JsonDict) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=False)


# --- files ------------------------------------------------------------------------------------


def render() -> dict[str, str]:
    """Every generated file, as {path relative to contracts/: text}."""
    schemas = event_schemas()
    files = {f"{SCHEMA_DIR}/{name}.json": json_text(s) for name, s in sorted(schemas.items())}
    files[ASYNCAPI_FILE] = yaml_text(asyncapi_document(schemas))
    return files


def stale_files(root: Path, files: dict[str, str]) -> list[str]:
    """Generated files that are missing or differ on disk, and schema files no longer generated."""
    stale = [
        rel
        for rel, text in files.items()
        if not (root / rel).is_file() or (root / rel).read_text(encoding="utf-8") != text
    ]
    extra = [
        f"{SCHEMA_DIR}/{p.name}"
        for p in sorted((root / SCHEMA_DIR).glob("*.json"))
        if f"{SCHEMA_DIR}/{p.name}" not in files
    ]
    return stale + extra


def write(root: Path, files: dict[str, str]) -> list[str]:
    changed = stale_files(root, files)
    (root / SCHEMA_DIR).mkdir(parents=True, exist_ok=True)
    for rel in changed:
        if rel in files:
            (root / rel).write_text(files[rel], encoding="utf-8")
        else:
            (root / rel).unlink()
    return changed


def main(argv: list[str] | None = None, root: Path = HERE) -> int:
    parser = argparse.ArgumentParser(prog="python -m contracts.generate", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if any checked-in file is stale"
    )
    args = parser.parse_args(argv)
    files = render()
    if args.check:
        stale = stale_files(root, files)
        if stale:
            print(
                "contract documents are stale (run `python -m contracts.generate` and review "
                "the diff):",
                *(f"  contracts/{rel}" for rel in stale),
                sep="\n",
                file=sys.stderr,
            )
            return 1
        print(f"contract documents are up to date ({len(files)} files)")
        return 0
    changed = write(root, files)
    print(f"wrote {len(changed)} of {len(files)} contract documents", *changed, sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
