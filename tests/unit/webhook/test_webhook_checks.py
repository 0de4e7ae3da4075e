"""The webhook's refusal rules: which answer and reason code for which request."""

import pytest

from contracts.signing import Refusal
from workers.webhook import checks
from workers.webhook.checks import Rejection, SignedHeaders

HEX = "ab" * 32


def test_known_providers_pass_and_others_are_404() -> None:
    assert checks.provider_known("direct") is None
    assert checks.provider_known("redirect") is None
    refused = checks.provider_known("paypal")
    assert refused is not None and (refused.status, refused.code) == (404, "unknown_provider")


def test_an_unknown_provider_does_not_mint_a_metric_label() -> None:
    assert checks.metric_provider("direct") == "direct"
    assert checks.metric_provider("x" * 500) == "unknown"


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
def test_json_content_types_pass(content_type: str) -> None:
    assert checks.content_type_ok(content_type) is None


@pytest.mark.parametrize("content_type", ["", "text/plain", "application/x-www-form-urlencoded"])
def test_other_content_types_are_415(content_type: str) -> None:
    refused = checks.content_type_ok(content_type)
    assert refused is not None and (refused.status, refused.code) == (415, "unsupported_media_type")


def test_well_formed_headers_are_read() -> None:
    signed = checks.signed_headers("k1", "1800000000", f"v1={HEX.upper()}")
    assert signed == SignedHeaders("k1", 1_800_000_000, HEX)


@pytest.mark.parametrize(
    ("key_id", "timestamp", "signature"),
    [(None, "1", f"v1={HEX}"), ("k1", None, f"v1={HEX}"), ("k1", "1", None), ("", "1", "")],
)
def test_missing_headers_are_400(
    key_id: str | None, timestamp: str | None, signature: str | None
) -> None:
    refused = checks.signed_headers(key_id, timestamp, signature)
    assert isinstance(refused, Rejection)
    assert (refused.status, refused.code) == (400, "missing_headers")


@pytest.mark.parametrize(
    ("key_id", "timestamp", "signature"),
    [
        ("k 1", "1", f"v1={HEX}"),
        ("k" * 65, "1", f"v1={HEX}"),
        ("k1", "-5", f"v1={HEX}"),
        ("k1", "1.5", f"v1={HEX}"),
        ("k1", "9" * 13, f"v1={HEX}"),
        ("k1", "1", HEX),
        ("k1", "1", "v1=xyz"),
        ("k1", "1", f"v2={HEX}"),
        ("k1", "1", f"v1={HEX}00"),
    ],
)
def test_garbled_headers_are_400(key_id: str, timestamp: str, signature: str) -> None:
    refused = checks.signed_headers(key_id, timestamp, signature)
    assert isinstance(refused, Rejection)
    assert (refused.status, refused.code) == (400, "malformed_headers")


@pytest.mark.parametrize(
    "code", ["unknown_key_id", "bad_signature", "stale_timestamp", "future_timestamp"]
)
def test_signature_refusals_are_401_with_their_code(code: str) -> None:
    assert checks.signature_refused(Refusal(code, "why")) == Rejection(401, code, "why")


def test_replays_are_401_and_malformed_bodies_400() -> None:
    assert checks.replayed("direct", "cb-1").status == 401
    assert checks.replayed("direct", "cb-1").code == "replayed_callback"
    assert checks.malformed("x" * 900) == Rejection(400, "malformed_notice", "x" * 500)
    assert checks.body_too_large(10) == Rejection(413, "body_too_large", "body exceeds 10 bytes")
