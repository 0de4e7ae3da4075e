"""A SimConfig for tests: a file under tmp_path, no faults unless given."""

from collections.abc import Mapping
from pathlib import Path

from workers.gateway_simulator.config import SimConfig, Timings
from workers.gateway_simulator.faults import Faults

API_KEY = "test-api-key"


def sim_config(
    tmp_path: Path, faults: Mapping[str, float] | None = None, **timings: int
) -> SimConfig:
    return SimConfig(
        host="127.0.0.1",
        port=0,
        db_path=tmp_path / "sim" / "simulator.sqlite3",
        public_url="http://127.0.0.1:1",
        webhook_url="http://127.0.0.1:9/webhooks",  # nothing listens: callbacks stay queued
        key_id="k1",
        secret="test-secret",
        api_key=API_KEY,
        timings=Timings(**timings),
        faults=Faults(dict(faults or {}), seed=0),
    )
