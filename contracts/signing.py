"""Gateway callback signatures: hex HMAC-SHA256 of the exact raw body with a shared secret."""

import hashlib
import hmac


def sign(secret: str, raw_body: str) -> str:
    return hmac.new(secret.encode(), raw_body.encode(), hashlib.sha256).hexdigest()


def verify(secret: str, raw_body: str, signature: str) -> bool:
    # Constant-time comparison: a forged signature learns nothing from timing.
    # Bytes, not str: compare_digest raises TypeError for non-ASCII str, and the signature
    # comes from outside.
    return hmac.compare_digest(sign(secret, raw_body).encode(), signature.lower().encode())
