"""Callback signature scheme v1: HMAC-SHA256 over "<timestamp>.<raw body>", a key id, a
timestamp tolerance, two keys during a rotation."""

import hashlib
import hmac

import pytest

from contracts.signing import parse_signature_header, sign, signature_header, verify

KEYS = {"k1": "secret-one"}
NOW = 1_800_000_000
BODY = '{"callback_id":"cb-1","status":"succeeded"}'


def check(
    keys: dict[str, str] = KEYS,
    key_id: str = "k1",
    timestamp: int = NOW,
    body: str = BODY,
    signature: str | None = None,
    now: float = NOW,
    tolerance_s: int = 300,
) -> str | None:
    sig = sign(keys.get(key_id, "x"), timestamp, body) if signature is None else signature
    refusal = verify(keys, key_id, timestamp, body, sig, now=now, tolerance_s=tolerance_s)
    return None if refusal is None else refusal.code


def test_signs_timestamp_dot_body_with_hmac_sha256() -> None:
    expected = hmac.new(b"secret-one", f"{NOW}.{BODY}".encode(), hashlib.sha256).hexdigest()
    assert sign("secret-one", NOW, BODY) == expected
    assert signature_header("secret-one", NOW, BODY) == f"v1={expected}"


def test_a_good_signature_verifies() -> None:
    assert check() is None


def test_upper_case_hex_is_the_same_signature() -> None:
    assert check(signature=sign("secret-one", NOW, BODY).upper()) is None


def test_unknown_key_id_is_refused_before_any_comparison() -> None:
    assert check(key_id="k9", signature=sign("secret-one", NOW, BODY)) == "unknown_key_id"


def test_wrong_key_wrong_body_or_re_dated_timestamp_is_a_bad_signature() -> None:
    assert check(signature=sign("other-secret", NOW, BODY)) == "bad_signature"
    assert check(signature=sign("secret-one", NOW, BODY + " ")) == "bad_signature"
    # The timestamp is signed: an old signature cannot be moved to a fresh timestamp.
    assert check(signature=sign("secret-one", NOW - 3600, BODY)) == "bad_signature"


@pytest.mark.parametrize("signature", ["", "zz", "é" * 64, "0" * 63, "0" * 65])
def test_garbage_signatures_are_refused_without_raising(signature: str) -> None:
    assert check(signature=signature) == "bad_signature"


def test_timestamp_tolerance_both_ways() -> None:
    assert check(timestamp=NOW - 300) is None
    assert check(timestamp=NOW + 300) is None
    assert check(timestamp=NOW - 301) == "stale_timestamp"
    assert check(timestamp=NOW + 301) == "future_timestamp"
    assert check(timestamp=1_577_836_800) == "stale_timestamp"  # 2020-01-01


def test_a_signature_is_checked_before_its_age() -> None:
    # A forged old callback says "bad signature", not "stale": we learn nothing from its age.
    assert check(timestamp=1_577_836_800, signature="0" * 64) == "bad_signature"


def test_two_active_keys_during_a_rotation() -> None:
    rotating = {"k2": "secret-two", "k1": "secret-one"}
    assert check(keys=rotating, key_id="k1") is None
    assert check(keys=rotating, key_id="k2") is None
    # k1's signature presented under k2's id does not verify.
    assert check(keys=rotating, key_id="k2", signature=sign("secret-one", NOW, BODY)) == (
        "bad_signature"
    )
    # Once k1 is dropped, its callbacks are refused.
    k1_signed = sign("secret-one", NOW, BODY)
    assert check(keys={"k2": "secret-two"}, key_id="k1", signature=k1_signed) == "unknown_key_id"


def test_refusals_say_why() -> None:
    refusal = verify(
        KEYS, "k1", NOW - 1000, BODY, sign("secret-one", NOW - 1000, BODY), now=NOW, tolerance_s=300
    )
    assert refusal is not None and "1000 s ago" in refusal.detail


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("v1=abc123", "abc123"),
        (" v1=abc ", "abc"),
        ("v0=abc", None),
        ("abc", None),
        ("v1=", None),
        ("", None),
    ],
)
def test_signature_header_parsing(header: str, expected: str | None) -> None:
    assert parse_signature_header(header) == expected
