"""Keep secrets out of log lines: sensitive keys, pydantic secrets and DSN passwords."""

import datetime as dt
import enum
import re
import uuid
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from pydantic import SecretBytes, SecretStr
from structlog.typing import EventDict, WrappedLogger

MASK = "**********"

# Matched anywhere in a key, case-insensitive: "pg_password", "X-Api-Key", "access_token".
_SENSITIVE_KEY = re.compile(
    r"secret|passw(or)?d|pwd|token|api[_-]?key|authorization|credential|cookie", re.I
)
# scheme://user:password@host -> scheme://user:***@host (also redis://:password@host).
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s]+@")
# libpq keyword DSNs and query strings: password=... / password='...'.
_KV_PASSWORD = re.compile(
    r"(?P<head>(?:password|passwd|pwd)\s*=\s*)(?:'[^']*'|\"[^\"]*\"|[^\s'\",;&]+)", re.I
)
# Nested containers are walked this deep; beyond it values are rendered as they are.
_MAX_DEPTH = 4


def mask_secrets(text: str) -> str:
    """The text with passwords inside DSNs and `password=` pairs replaced by ***."""
    if "=" not in text and "://" not in text:
        return text  # the common case: nothing that could hold a password
    text = _URL_PASSWORD.sub(r"\g<head>***@", text)
    return _KV_PASSWORD.sub(r"\g<head>***", text)


def _redact(key: object, value: Any, depth: int) -> Any:
    if value is None:
        return None
    if isinstance(key, str) and _SENSITIVE_KEY.search(key):
        return MASK
    if isinstance(value, SecretStr | SecretBytes):
        return MASK
    if isinstance(value, str):
        return mask_secrets(value)
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {k: _redact(k, v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(None, v, depth + 1) for v in value]
    return value


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Processor: run after exceptions are formatted, so tracebacks are masked too."""
    return {k: _redact(k, v, 0) for k, v in event_dict.items()}


def json_default(value: Any) -> Any:
    """JSON fallback for values the encoder does not know; reprs are masked as well."""
    if isinstance(value, SecretStr | SecretBytes):
        return MASK
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal | PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value if isinstance(value.value, str | int) else value.name
    return mask_secrets(repr(value))
