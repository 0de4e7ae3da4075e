"""How a webhook answer is taken (delivered, retried, final), the backoff, and the signature."""

from pathlib import Path

import pytest

from contracts.signing import (
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    parse_signature_header,
    verify,
)
from tests.unit.gateway_simulator.helpers import sim_config
from workers.gateway_simulator.callback_queue import Callback
from workers.gateway_simulator.dispatcher import backoff_s
from workers.gateway_simulator.sender import classify, signed_headers


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, "delivered"),
        (202, "delivered"),
        (500, "retry"),
        (503, "retry"),
        (408, "retry"),
        (429, "retry"),
        (302, "retry"),
        (400, "rejected"),
        (401, "rejected"),
        (413, "rejected"),
    ],
)
def test_classify(status: int, verdict: str) -> None:
    assert classify(status) == verdict


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    for attempts in range(12):
        base = min(10.0, 0.2 * 2**attempts)
        assert base / 2 <= backoff_s(attempts, 0.2, 10.0) <= base
    assert backoff_s(1_000, 0.2, 10.0) <= 10.0


def _callback(wrong_key: bool) -> Callback:
    return Callback(1, "cb_1", "direct", "payment", "pay-1", "gw_1", '{"a":1}', wrong_key, 0)


def test_signed_afresh_and_bad_signature_fails(tmp_path: Path) -> None:
    cfg = sim_config(tmp_path)
    keys = {cfg.key_id: cfg.secret}
    for wrong, ok in ((False, True), (True, False)):
        headers = signed_headers(cfg, _callback(wrong), 1_700_000_000.5)
        assert headers[KEY_ID_HEADER] == "k1" and headers[TIMESTAMP_HEADER] == "1700000000"
        refusal = verify(
            keys,
            "k1",
            1_700_000_000,
            '{"a":1}',
            parse_signature_header(headers[SIGNATURE_HEADER]) or "",
            now=1_700_000_001,
            tolerance_s=300,
        )
        assert (refusal is None) == ok
