"""Where a server listens, read from the URL the others reach it by."""

import pytest

from workers.runtime.urls import listen_address


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:18090/webhooks", ("127.0.0.1", 18090, "/webhooks")),
        ("http://localhost", ("localhost", 80, "")),
        ("https://gw.example/v1/", ("gw.example", 443, "/v1/")),
    ],
)
def test_host_port_and_path(url: str, expected: tuple[str, int, str]) -> None:
    assert listen_address(url, "PAYFLOW_X_URL") == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1:21", "PAYFLOW_X_URL must be http"),
        ("127.0.0.1:8080", "PAYFLOW_X_URL must be http"),
        ("http://:8080/x", "PAYFLOW_X_URL must be http"),
        ("http://127.0.0.1:99999", "PAYFLOW_X_URL has an invalid port"),
        ("http://127.0.0.1:port", "PAYFLOW_X_URL has an invalid port"),
    ],
)
def test_a_bad_url_names_its_variable(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        listen_address(url, "PAYFLOW_X_URL")
