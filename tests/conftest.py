"""Test session isolation: its own topic namespace, database and ports, set before any
payflow module reads its settings, so tests never see the demo's (or another session's)
messages, rows or processes."""

import os
import uuid

from infra.ports import free_port, free_ports
from workers.runtime.health_server import MAX_REPLICAS, REPLICA_STEP

SESSION = f"t{uuid.uuid4().hex[:8]}"
os.environ.setdefault("PAYFLOW_TOPIC_NAMESPACE", SESSION)
os.environ.setdefault("PAYFLOW_PG_DATABASE", f"payflow_{SESSION}")
# Room for every replica slot of every worker process after the base port.
os.environ.setdefault("PAYFLOW_METRICS_PORT", str(free_ports(REPLICA_STEP * MAX_REPLICAS)))
os.environ.setdefault("PAYFLOW_GATEWAY_URL", f"http://127.0.0.1:{free_port()}")
os.environ.setdefault("PAYFLOW_WEBHOOK_URL", f"http://127.0.0.1:{free_port()}/webhooks")
# A killed worker's partitions move to its replacement quickly.
os.environ.setdefault("PAYFLOW_SESSION_TIMEOUT_MS", "6000")
