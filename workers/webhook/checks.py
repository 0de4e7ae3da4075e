"""What the webhook refuses, and with which answer: pure rules over one request's parts.

Every refusal is final for the gateway (docs/gateway-api.md: a 4xx other than 408/429 is not
retried), so each one is also recorded for operators with its reason code. A refusal that
is our fault (Kafka or Postgres down) is a 503 instead, which the gateway retries.
"""

import re
from dataclasses import dataclass

from contracts import signing
from workers.gateway.notices import PROVIDERS

# Header values are attacker-controlled: shape-check them before any use.
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")
JSON_TYPE = "application/json"


@dataclass(frozen=True)
class Rejection:
    status: int  # the HTTP answer
    code: str  # the reason code: in the answer, the table, the log line and the metric
    detail: str


@dataclass(frozen=True)
class SignedHeaders:
    key_id: str
    timestamp: int
    signature: str  # lowercase hex, without the "v1=" scheme


def provider_known(provider: str) -> Rejection | None:
    if provider in PROVIDERS:
        return None
    return Rejection(404, "unknown_provider", f"providers: {', '.join(PROVIDERS)}")


def metric_provider(provider: str) -> str:
    """The provider label of a metric: a path segment from outside must not mint labels."""
    return provider if provider in PROVIDERS else "unknown"


def content_type_ok(content_type: str) -> Rejection | None:
    """`application/json`, with or without parameters (charset)."""
    if content_type.split(";", 1)[0].strip().lower() == JSON_TYPE:
        return None
    return Rejection(415, "unsupported_media_type", f"Content-Type must be {JSON_TYPE}")


def body_too_large(limit: int) -> Rejection:
    return Rejection(413, "body_too_large", f"body exceeds {limit} bytes")


def signed_headers(
    key_id: str | None, timestamp: str | None, signature: str | None
) -> SignedHeaders | Rejection:
    """The three signature headers, each present and well formed; 400 otherwise."""
    missing = [
        name
        for name, value in (
            (signing.KEY_ID_HEADER, key_id),
            (signing.TIMESTAMP_HEADER, timestamp),
            (signing.SIGNATURE_HEADER, signature),
        )
        if not value
    ]
    if missing:
        return Rejection(400, "missing_headers", f"missing {', '.join(missing)}")
    assert key_id is not None and timestamp is not None and signature is not None
    hexsig = signing.parse_signature_header(signature)
    bad = [
        name
        for name, ok in (
            (signing.KEY_ID_HEADER, _KEY_ID.fullmatch(key_id)),
            (signing.TIMESTAMP_HEADER, _TIMESTAMP.fullmatch(timestamp.strip())),
            (signing.SIGNATURE_HEADER, hexsig and _HEX_SIGNATURE.fullmatch(hexsig)),
        )
        if not ok
    ]
    if bad:
        return Rejection(
            400,
            "malformed_headers",
            f"malformed {', '.join(bad)} (key id: identifier; timestamp: Unix seconds; "
            f"signature: {signing.SCHEME}=<64 hex digits>)",
        )
    assert hexsig is not None
    return SignedHeaders(key_id, int(timestamp.strip()), hexsig.lower())


def signature_refused(refusal: signing.Refusal) -> Rejection:
    """unknown_key_id, bad_signature, stale_timestamp, future_timestamp: 401."""
    return Rejection(401, refusal.code, refusal.detail)


def malformed(detail: str) -> Rejection:
    return Rejection(400, "malformed_notice", detail[:500])


def replayed(provider: str, callback_id: str) -> Rejection:
    return Rejection(
        401,
        "replayed_callback",
        f"{provider} callback {callback_id} was accepted before with another body",
    )
