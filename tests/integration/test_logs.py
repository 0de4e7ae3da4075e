"""A Kafka outage seen by a real aiokafka consumer: a few JSON lines, not hundreds of plain
ones. The outage is simulated in this process (new connections go to a closed port, open
ones are closed), so the shared broker is untouched."""

import asyncio
import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import aiokafka.client
import pytest
import structlog
from aiokafka import AIOKafkaConsumer

from infra.settings import Settings
from workers.runtime.logs import LIBRARY_LOGGERS, configure_logging, flush_logs

pytestmark = pytest.mark.integration


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    library_levels = {n: logging.getLogger(n).level for n in LIBRARY_LOGGERS}
    config = structlog.get_config()
    stream = io.StringIO()
    configure_logging("INFO", collapse_s=60.0, stream=stream, flush_interval_s=None)
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, lib_level in library_levels.items():
        logging.getLogger(name).setLevel(lib_level)
    structlog.configure(**config)


async def test_a_kafka_outage_is_a_few_json_lines(
    services: Settings, log_stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=services.kafka_bootstrap,
        group_id=f"it-logs-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        heartbeat_interval_ms=500,
        retry_backoff_ms=100,
    )
    consumer.subscribe(pattern=r"^it-logs-none\..*")  # joins the group, no topic needed
    await consumer.start()
    real_create_conn = aiokafka.client.create_conn

    async def refused(host: str, port: int, **kw: Any) -> Any:
        return await real_create_conn("127.0.0.1", 1, **kw)

    try:
        await consumer.getmany(timeout_ms=2_000)
        monkeypatch.setattr(aiokafka.client, "create_conn", refused)
        for conn in list(consumer._client._conns.values()):
            conn.close()
        for _ in range(12):  # about 6 s down: aiokafka retries every 100 ms
            await consumer.getmany(timeout_ms=500)
        flush_logs(force=True)
    finally:
        monkeypatch.undo()
        await asyncio.wait_for(consumer.stop(), 15)

    lines = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    firsts = [line for line in lines if "repeated" not in line]
    counts = [line for line in lines if "repeated" in line]
    assert any(line["logger"].startswith("aiokafka") for line in firsts)
    assert all(line["level"] in ("warning", "error") for line in lines)
    # Unable connect / update metadata / coordinator errors: a handful of distinct keys.
    assert len(lines) <= 20, lines
    assert sum(line["repeated"] for line in counts) >= 10
    assert {line["event"] for line in counts} <= {line["event"] for line in firsts}
