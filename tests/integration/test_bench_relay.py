"""The bare relay baseline of `payflow bench` on the real Kafka: every message crosses all
hops, a run that cannot finish in time says so, and its scratch topics are removed."""

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from infra.settings import Settings
from workers.bench.relay import RelayError, relay_run, relay_topics

pytestmark = pytest.mark.integration


async def _existing(settings: Settings, names: list[str]) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics()) & set(names)
    finally:
        await admin.close()


async def test_relay_moves_every_message_through_five_hops(services: Settings) -> None:
    result = await relay_run(services, b"x" * 600, 200, timeout_s=60.0, run_id="it-ok")
    assert result.count == 200
    assert result.elapsed_s > 0
    assert result.orders_per_s > 0
    assert await _existing(services, relay_topics("it-ok", 5)) == set()


async def test_relay_out_of_time_raises_and_cleans_up(services: Settings) -> None:
    with pytest.raises(RelayError, match="timed out"):
        await relay_run(services, b"x" * 600, 200, timeout_s=0.0, run_id="it-late")
    assert await _existing(services, relay_topics("it-late", 5)) == set()


async def test_relay_refuses_zero_messages(services: Settings) -> None:
    with pytest.raises(ValueError, match="count and hops"):
        await relay_run(services, b"x", 0)
