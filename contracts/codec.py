"""Bytes <-> events, with specific reasons for everything that is refused."""

import json
from functools import cache
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter, ValidationError

from contracts.envelope import Envelope
from contracts.money import UNKNOWN_CURRENCY
from contracts.topics import by_name


class ContractError(ValueError):
    """A message that can never be processed as it is. `code` is stable, `detail` is for people."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def encode(event: Envelope) -> bytes:
    return event.model_dump_json().encode()


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        said = f" {_short(repr(err['input']), 40)}" if err["type"] == UNKNOWN_CURRENCY else ""
        parts.append(f"{where}: {err['msg']}{said}")
    return "; ".join(parts)


def decode(topic: str, raw: bytes | None) -> Envelope:
    """Parse a message from `topic`, refusing anything the topic's contract does not allow.
    Every failure is a ContractError, whatever the bytes: the runtime relies on it."""
    try:
        return _decode(topic, raw)
    except ContractError:
        raise
    except Exception as exc:
        raise ContractError("undecodable", f"{type(exc).__name__}: {_short(exc)}") from exc


def _decode(topic: str, raw: bytes | None) -> Envelope:
    registered = by_name(topic)
    if registered is None:
        raise ContractError("unknown_topic", f"no contract for topic {topic!r}")
    if not raw:
        raise ContractError("empty_message", "message has no value")
    try:
        # The usual message: parsed and validated once, in pydantic's own parser.
        event = _validator(registered.events).validate_json(raw)
    except ValidationError:
        pass  # refused: the checks below say why, in the order they always have
    else:
        # event_type has a default in each model: a message must still name it.
        if "event_type" in event.model_fields_set and event.schema_version in event.SCHEMA_VERSIONS:
            return event
    try:
        # UTF-8 only (json.loads would also guess UTF-16/32, which the model parser refuses);
        # absurd nesting is refused here rather than crashing with RecursionError.
        doc: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ContractError("not_json", f"value is not UTF-8 JSON: {_short(exc)}") from exc
    except ValueError as exc:
        # Python refuses integers of more than 4,300 digits (CVE-2020-10735 limit).
        detail = f"value has a number too long: {_short(exc)}"
        raise ContractError("number_too_large", detail) from exc
    if not isinstance(doc, dict):
        raise ContractError("not_an_object", "value must be a JSON object")
    kinds = {cls.type_name(): cls for cls in registered.events}
    event_type = doc.get("event_type")
    if not isinstance(event_type, str) or event_type not in kinds:
        raise ContractError(
            "unknown_event_type",
            f"event_type {event_type!r} is not carried by {topic} (expected one of {sorted(kinds)})",
        )
    cls = kinds[event_type]
    version = doc.get("schema_version")
    if version not in cls.SCHEMA_VERSIONS:
        raise ContractError(
            "unsupported_schema_version",
            f"{event_type} schema_version {version!r} is not supported "
            f"(supported: {list(cls.SCHEMA_VERSIONS)})",
        )
    try:
        return cls.model_validate_json(raw)
    except ValidationError as exc:
        raise ContractError("invalid_event", f"{event_type}: {_describe(exc)}") from exc


@cache
def _validator(events: tuple[type[Envelope], ...]) -> TypeAdapter[Envelope]:
    """The topic's events told apart by `event_type` (each pins it to a Literal)."""
    if len(events) == 1:
        return TypeAdapter(events[0])
    union = Union[events]  # type: ignore[valid-type]  # noqa: UP007
    return TypeAdapter(Annotated[union, Field(discriminator="event_type")])


def _short(said: object, limit: int = 300) -> str:
    text = str(said)
    return text if len(text) <= limit else text[:limit] + "..."
