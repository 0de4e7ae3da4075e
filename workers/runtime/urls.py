"""Where a server of ours listens, read from the URL the others reach it by (the simulator
serves PAYFLOW_GATEWAY_URL, the webhook PAYFLOW_WEBHOOK_URL): one URL, so they cannot differ."""

from typing import NamedTuple
from urllib.parse import urlsplit


class ListenAddress(NamedTuple):
    host: str
    port: int
    path: str  # "" when the URL has none


def listen_address(url: str, variable: str) -> ListenAddress:
    """Host, port (the scheme's default when absent) and path of an http(s) URL; ValueError
    naming `variable` (the setting it came from) otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{variable} must be http(s)://HOST[:PORT][/PATH], got {url!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{variable} has an invalid port: {url!r}") from exc
    return ListenAddress(
        parts.hostname, port or (443 if parts.scheme == "https" else 80), parts.path
    )
