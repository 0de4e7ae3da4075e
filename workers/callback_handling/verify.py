"""Verifying a callback as received: signature and key id, timestamp, then its body.

The same rules as the webhook (workers/webhook), for callbacks published on the topic
directly: the signature must verify under an active key, the signed timestamp must be within
the tolerance of when the callback was received, and that reception time may not lie in the
future of this stage's clock (which would let a producer re-date an old signature). An old
`received_at` is allowed: the stage may be catching up on a backlog, and a callback id is
decided once whatever its age (the replay check in step.py).
"""

from contracts import signing
from contracts.events.gateway import GatewayCallbackReceivedPayload
from workers.gateway.notices import MalformedNotice, read_notice
from workers.gateway.port import Notice
from workers.runtime.errors import PermanentError


def verified_notice(
    received: GatewayCallbackReceivedPayload, keys: dict[str, str], tolerance_s: int, now: float
) -> Notice:
    """The notice in a callback that verifies; PermanentError (dead letter) otherwise."""
    received_at = received.received_at.timestamp()
    if received_at > now + tolerance_s:
        raise _forged(
            received,
            "future_received_at",
            f"received_at is {int(received_at - now)} s ahead of this stage's clock",
        )
    refusal = signing.verify(
        keys,
        received.key_id,
        received.timestamp,
        received.raw_body,
        received.signature,
        now=received_at,
        tolerance_s=tolerance_s,
    )
    if refusal is not None:
        raise _forged(received, refusal.code, refusal.detail)
    try:
        return read_notice(received.provider, received.raw_body)
    except MalformedNotice as exc:
        raise PermanentError("malformed_callback", str(exc)) from exc


def _forged(received: GatewayCallbackReceivedPayload, code: str, detail: str) -> PermanentError:
    return PermanentError(
        "forged_callback", f"{received.provider} callback (key {received.key_id}): {code}: {detail}"
    )
