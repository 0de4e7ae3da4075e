"""Listening address from settings.gateway_url and the callback delay from the environment."""

import pytest

from workers.gateway_simulator.config import DELAY_ENV, callback_delay_ms_from_env, listen_address


def test_listen_address_from_url() -> None:
    assert listen_address("http://127.0.0.1:18080") == ("127.0.0.1", 18080)
    assert listen_address("http://localhost/") == ("localhost", 80)
    assert listen_address("http://[::1]:9000") == ("::1", 9000)


@pytest.mark.parametrize("url", ["127.0.0.1:18080", "ftp://host:1", "http://host:port"])
def test_listen_address_refuses_bad_urls(url: str) -> None:
    with pytest.raises(ValueError, match="gateway_url"):
        listen_address(url)


def test_delay_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DELAY_ENV, raising=False)
    assert callback_delay_ms_from_env() == 20
    monkeypatch.setenv(DELAY_ENV, "250")
    assert callback_delay_ms_from_env() == 250
    for bad in ("fast", "-1", "1.5"):
        monkeypatch.setenv(DELAY_ENV, bad)
        with pytest.raises(ValueError, match=DELAY_ENV):
            callback_delay_ms_from_env()
