"""Reading single fields of a gateway's JSON answers; a wrong one raises ValueError."""

from datetime import UTC, datetime
from typing import Any


def text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def optional_text(value: Any) -> str | None:
    return None if value is None or value == "" else text(value)


def timestamp(value: Any) -> datetime | None:
    """ISO 8601; the document says UTC, so a time without an offset is read as UTC."""
    if value is None or value == "":
        return None
    parsed = datetime.fromisoformat(text(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
