"""The gateway simulator end to end: real HTTP in, signed callbacks out on the real Kafka topic."""

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts.codec import decode
from contracts.events.gateway import GatewayCallbackBody, GatewayCallbackReceived
from contracts.signing import verify
from contracts.topics import GATEWAY_CALLBACKS
from infra.settings import Settings
from workers.gateway_simulator.main import serve

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
        return sorted(p["partition"] for p in described["partitions"])
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def consumer_at_end(settings: Settings) -> AsyncIterator[AIOKafkaConsumer]:
    """A group-less consumer positioned at the topic's current end: sees only new callbacks."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = await partitions_of(settings.kafka_bootstrap, GATEWAY_CALLBACKS.name)
        assert partitions, f"topic {GATEWAY_CALLBACKS.name} has no partitions"
        tps = [TopicPartition(GATEWAY_CALLBACKS.name, p) for p in partitions]
        consumer.assign(tps)
        for tp, offset in (await consumer.end_offsets(tps)).items():
            consumer.seek(tp, offset)
        yield consumer
    finally:
        await consumer.stop()


Records = dict[str, list[ConsumerRecord[Any, Any]]]


async def collect(
    consumer: AIOKafkaConsumer, got: Records, timeout_s: float, want: dict[str, int] | None = None
) -> None:
    """Read records into `got` (by key) until each key in `want` has that many, or time runs out
    (without `want`: read for the whole timeout)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        batches = await consumer.getmany(timeout_ms=200)
        for records in batches.values():
            for rec in records:
                got.setdefault(rec.key.decode(), []).append(rec)
        if want and all(len(got.get(k, [])) >= n for k, n in want.items()):
            return


async def wait_healthy(http: aiohttp.ClientSession, url: str, server: asyncio.Task[None]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.done():
            server.result()  # surfaces the startup error
            raise AssertionError("simulator exited during startup")
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"{url}/healthz") as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.2)
    raise AssertionError("simulator did not become healthy")


def charge_body(suffix: str, amount: int) -> dict[str, Any]:
    return {
        "payment_id": f"pay-{suffix}",
        "order_id": f"ord-{suffix}",
        "amount": {"amount": amount, "currency": "EUR"},
    }


async def test_callbacks_reach_kafka_signed_and_decodable(services: Settings) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    settings = services.model_copy(update={"gateway_url": url})

    run = uuid.uuid4().hex[:12]
    plain = charge_body(f"{run}-a", 1_000)
    twice = charge_body(f"{run}-b", 1_042)  # the duplicate-delivery rule
    want = {plain["order_id"]: 1, twice["order_id"]: 2}
    got: Records = {}

    stop = asyncio.Event()
    async with consumer_at_end(settings) as consumer, aiohttp.ClientSession() as http:
        server = asyncio.create_task(serve(settings, stop=stop, callback_delay_ms=10))
        try:
            await wait_healthy(http, url, server)
            created: dict[str, Any] = {}
            for body in (plain, twice):
                key = f"idem-{body['payment_id']}"
                async with http.post(
                    f"{url}/v1/payments", json=body, headers={"Idempotency-Key": key}
                ) as resp:
                    assert resp.status == 201, await resp.text()
                    created[str(body["order_id"])] = await resp.json()
            # A client retry: replayed, and no second callback (checked below).
            async with http.post(
                f"{url}/v1/payments",
                json=plain,
                headers={"Idempotency-Key": f"idem-{plain['payment_id']}"},
            ) as resp:
                assert resp.status == 200
                assert resp.headers["Idempotent-Replayed"] == "true"
            await collect(consumer, got, 30, want)

            ref = created[str(plain["order_id"])]["gateway_ref"]
            async with http.get(f"{url}/v1/payments/{ref}") as resp:
                assert (await resp.json())["status"] == "succeeded"
        finally:
            stop.set()
            await asyncio.wait_for(server, 30)
        # Stopped (pending callbacks flushed): a stray extra callback would be here by now.
        await collect(consumer, got, 1.0)

    assert {k: len(got.get(k, [])) for k in want} == want
    for order_id, records in ((k, got[k]) for k in want):
        bodies = []
        for rec in records:
            assert rec.key == order_id.encode()
            event = decode(GATEWAY_CALLBACKS.name, rec.value)
            assert isinstance(event, GatewayCallbackReceived)
            assert event.correlation_id == order_id
            assert event.payload.provider == "simulator"
            assert verify(
                settings.gateway_secret.get_secret_value(),
                event.payload.raw_body,
                event.payload.signature,
            )
            callback = GatewayCallbackBody.model_validate_json(event.payload.raw_body)
            assert callback.gateway_ref == created[order_id]["gateway_ref"]
            assert callback.status == "succeeded"
            assert event.idempotency_key == f"gw-callback:{callback.callback_id}"
            bodies.append(callback)
        assert len({b.callback_id for b in bodies}) == 1  # the duplicate is the same callback
