"""The one envelope every event travels in."""

import hashlib
import uuid
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, ClassVar, Self

from pydantic import AwareDatetime, Field, StrictInt, model_validator

from contracts.base import Identifier, StrictModel, Text

# Output event ids are derived from their cause, so a re-published output keeps its id
# and the consumer's inbox recognises it.
_EVENT_NS = uuid.UUID("6f1d2c3e-59b5-4c0e-9a57-0c7e5a1f1a00")


_NS_BYTES = _EVENT_NS.bytes
# uuid5's version and variant bits, set on the hash's first 128 bits as uuid.uuid5 sets them.
_V5_KEEP = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_V5_SET = (5 << 76) | (0x8000 << 48)


def derived_event_id(cause: uuid.UUID | str, what: str) -> uuid.UUID:
    """uuid5(_EVENT_NS, "<cause>:<what>"), built from its integer: half the cost of
    uuid.uuid5, which an event pays once or twice (tests/unit/contracts pin the equality)."""
    digest = hashlib.sha1(_NS_BYTES + f"{cause}:{what}".encode()).digest()
    return uuid.UUID(int=(int.from_bytes(digest[:16]) & _V5_KEEP) | _V5_SET)


MAX_KEY = 200


def _follow_on_key(cause_key: str, tag: str) -> str:
    """The cause's key plus what followed; hashed when it would outgrow the limit."""
    key = f"{cause_key}/{tag}"
    return key if len(key) <= MAX_KEY else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class Envelope(StrictModel):
    """Base of every event. Subclasses pin `event_type` to a Literal and define `payload`."""

    SCHEMA_VERSIONS: ClassVar[tuple[int, ...]] = (1,)

    event_id: uuid.UUID
    event_type: str
    schema_version: Annotated[StrictInt, Field(ge=1)]
    occurred_at: AwareDatetime
    correlation_id: Identifier = Field(description="The order id: one order's events share it.")
    causation_id: uuid.UUID | None = Field(
        default=None, description="event_id of the event that caused this one."
    )
    idempotency_key: Text = Field(min_length=1, max_length=MAX_KEY)
    payload: Any

    @model_validator(mode="after")
    def _correlates_with_order(self) -> Self:
        # A model's fields are in its __dict__: no AttributeError raised per absent field.
        fields = getattr(self.payload, "__dict__", {})
        for field in ("order_id", "operation_id"):
            value = fields.get(field)
            if value is not None and value != self.correlation_id:
                raise ValueError(
                    f"correlation_id {self.correlation_id!r} must equal payload.{field} {value!r}"
                )
        return self

    @classmethod
    @cache  # read once per class: every event built asks, and model_fields is slow to reach
    def type_name(cls) -> str:
        name = cls.model_fields["event_type"].default
        assert isinstance(name, str), f"{cls.__name__} must pin event_type"
        return name

    @classmethod
    def caused_by(cls, cause: "Envelope", payload: Any, *, what: str = "") -> Self:
        """An event produced in response to `cause`, with a deterministic id."""
        tag = what or cls.type_name()
        return cls(
            event_id=derived_event_id(cause.event_id, tag),
            event_type=cls.type_name(),
            schema_version=cls.SCHEMA_VERSIONS[-1],
            occurred_at=datetime.now(UTC),
            correlation_id=cause.correlation_id,
            causation_id=cause.event_id,
            idempotency_key=_follow_on_key(cause.idempotency_key, tag),
            payload=payload,
        )

    @classmethod
    def new(cls, correlation_id: str, payload: Any, *, idempotency_key: str) -> Self:
        """A first event (no cause), e.g. published by an upstream system or the simulator."""
        return cls(
            event_id=uuid.uuid4(),
            event_type=cls.type_name(),
            schema_version=cls.SCHEMA_VERSIONS[-1],
            occurred_at=datetime.now(UTC),
            correlation_id=correlation_id,
            idempotency_key=idempotency_key,
            payload=payload,
        )
