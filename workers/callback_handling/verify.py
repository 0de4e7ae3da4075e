"""Verifying a callback as received: signature and key id, timestamp, then its body."""

from contracts import signing
from contracts.events.gateway import GatewayCallbackReceivedPayload
from workers.gateway.notices import MalformedNotice, read_notice
from workers.gateway.port import Notice
from workers.runtime.errors import PermanentError


def verified_notice(
    received: GatewayCallbackReceivedPayload, keys: dict[str, str], tolerance_s: int
) -> Notice:
    """The notice in a callback whose signature verifies and whose timestamp is within the
    tolerance of when it was received; PermanentError (dead letter) otherwise."""
    refusal = signing.verify(
        keys,
        received.key_id,
        received.timestamp,
        received.raw_body,
        received.signature,
        now=received.received_at.timestamp(),
        tolerance_s=tolerance_s,
    )
    if refusal is not None:
        raise PermanentError(
            "forged_callback", f"{received.provider} callback: {refusal.code}: {refusal.detail}"
        )
    try:
        return read_notice(received.provider, received.raw_body)
    except MalformedNotice as exc:
        raise PermanentError("malformed_callback", str(exc)) from exc
