"""Gateway callback signatures (scheme v1).

The gateway signs `f"{timestamp}.{raw_body}"` with HMAC-SHA256 under one of the keys we
share with it and sends three headers: the key id, the timestamp (Unix seconds) and the
hex signature. Signing the timestamp with the body is what makes an old callback
impossible to re-date; the key id is what lets two keys be active while one is rotated.
"""

import hashlib
import hmac
from collections.abc import Mapping

# Refusal codes here: unknown_key_id | bad_signature | stale_timestamp | future_timestamp.
from contracts.base import Refusal as Refusal  # re-exported: verify() returns it

KEY_ID_HEADER = "Payflow-Key-Id"
TIMESTAMP_HEADER = "Payflow-Timestamp"
SIGNATURE_HEADER = "Payflow-Signature"
SCHEME = "v1"


def sign(secret: str, timestamp: int, raw_body: str) -> str:
    message = f"{timestamp}.{raw_body}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, raw_body: str) -> str:
    return f"{SCHEME}={sign(secret, timestamp, raw_body)}"


def parse_signature_header(value: str) -> str | None:
    """The hex signature from `v1=<hex>`; None when the header is not in that form."""
    scheme, _, hexsig = value.strip().partition("=")
    if scheme != SCHEME or not hexsig:
        return None
    return hexsig


def verify(
    keys: Mapping[str, str],
    key_id: str,
    timestamp: int,
    raw_body: str,
    signature: str,
    *,
    now: float,
    tolerance_s: int,
) -> Refusal | None:
    """None when the signature is good and the timestamp is within `tolerance_s` of `now`."""
    secret = keys.get(key_id)
    if secret is None:
        return Refusal("unknown_key_id", f"no active key has id {key_id!r}")
    # Constant time, over bytes: compare_digest refuses non-ASCII str, and this comes from
    # outside.
    expected = sign(secret, timestamp, raw_body).encode()
    if not hmac.compare_digest(expected, signature.strip().lower().encode()):
        return Refusal("bad_signature", f"signature does not verify under key {key_id!r}")
    if timestamp < now - tolerance_s:
        return Refusal("stale_timestamp", f"signed {int(now - timestamp)} s ago")
    if timestamp > now + tolerance_s:
        return Refusal("future_timestamp", f"signed {int(timestamp - now)} s in the future")
    return None
