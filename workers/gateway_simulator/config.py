"""Where the simulator listens and how long it waits before calling back."""

import os
from urllib.parse import urlsplit

from workers.gateway_simulator.api import DEFAULT_CALLBACK_DELAY_MS

DELAY_ENV = "PAYFLOW_SIM_CALLBACK_DELAY_MS"


def listen_address(gateway_url: str) -> tuple[str, int]:
    """Host and port from settings.gateway_url: we serve the URL our stages call."""
    parts = urlsplit(gateway_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"gateway_url must be http://HOST[:PORT], got {gateway_url!r}")
    try:
        port = parts.port
    except ValueError as exc:  # e.g. a non-numeric port
        raise ValueError(f"gateway_url has an invalid port: {gateway_url!r}") from exc
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def callback_delay_ms_from_env() -> int:
    raw = os.environ.get(DELAY_ENV, "").strip()
    if not raw:
        return DEFAULT_CALLBACK_DELAY_MS
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{DELAY_ENV} must be an integer number of ms, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{DELAY_ENV} must be >= 0, got {value}")
    return value
