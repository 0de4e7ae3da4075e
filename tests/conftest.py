"""Test session isolation: its own topic namespace, database and ports, set before any
payflow module reads its settings, so tests never see the demo's (or another session's)
messages, rows or processes."""

import os
import socket
import uuid


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SESSION = f"t{uuid.uuid4().hex[:8]}"
os.environ.setdefault("PAYFLOW_TOPIC_NAMESPACE", SESSION)
os.environ.setdefault("PAYFLOW_PG_DATABASE", f"payflow_{SESSION}")
os.environ.setdefault("PAYFLOW_METRICS_PORT", str(_free_port()))
os.environ.setdefault("PAYFLOW_GATEWAY_URL", f"http://127.0.0.1:{_free_port()}")
os.environ.setdefault("PAYFLOW_WEBHOOK_URL", f"http://127.0.0.1:{_free_port()}/webhooks")
# A killed worker's partitions move to its replacement quickly.
os.environ.setdefault("PAYFLOW_SESSION_TIMEOUT_MS", "6000")
