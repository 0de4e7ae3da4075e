"""The signature suite against the real webhook on a port, with real Kafka and Postgres:
a good callback is on the callback topic before its 200; every refusal has its answer, its
row in webhook_rejections and its count on /metrics."""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import pytest
import pytest_asyncio
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import SecretStr

from contracts.codec import decode
from contracts.events.gateway import GatewayCallbackBody, GatewayCallbackReceived
from contracts.money import Money
from contracts.signing import signature_header
from contracts.topics import GATEWAY_CALLBACKS
from infra.ports import free_port
from infra.settings import Settings
from workers.runtime.kafka import make_producer
from workers.runtime.urls import listen_address
from workers.webhook.app import Webhook, build_app
from workers.webhook.serve import serve

pytestmark = pytest.mark.integration

SECRET, OLD_SECRET = "current-secret", "previous-secret"
LIMIT = 4096
OLD = 1_577_836_800  # 2020-01-01


def _settings(base: Settings, **extra: Any) -> Settings:
    update: dict[str, Any] = {
        "webhook_url": f"http://127.0.0.1:{free_port()}/hooks",
        "gateway_key_id": "k2",
        "gateway_secret": SecretStr(SECRET),
        "gateway_previous_key_id": "k1",
        "gateway_previous_secret": SecretStr(OLD_SECRET),
        "webhook_max_body_bytes": LIMIT,
    }
    update.update(extra)
    return base.model_copy(update=update)


@pytest_asyncio.fixture
async def running(services: Settings) -> AsyncIterator[Settings]:
    async with _served(_settings(services)) as settings:
        yield settings


class _Served:
    def __init__(self, settings: Settings) -> None:
        self.settings, self.stop = settings, asyncio.Event()

    async def __aenter__(self) -> Settings:
        self.task = asyncio.create_task(serve(self.settings, self.stop))
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                if self.task.done():
                    await self.task  # raises what stopped it
                try:
                    async with http.get(_root(self.settings) + "/healthz") as resp:
                        if resp.status == 200:
                            return self.settings
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError("the webhook did not come up")

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        await self.task


def _served(settings: Settings) -> _Served:
    return _Served(settings)


def _root(settings: Settings) -> str:
    return settings.webhook_url.rsplit("/", 1)[0]


def _body(callback_id: str | None = None, payment_id: str = "pay-1") -> str:
    return GatewayCallbackBody(
        callback_id=callback_id or f"cb-{uuid.uuid4().hex[:12]}",
        gateway_ref=f"gw-{uuid.uuid4().hex[:8]}",
        payment_id=payment_id,
        status="succeeded",
        amount=Money(amount=1899, currency="EUR"),
        occurred_at=datetime.now(UTC),
    ).model_dump_json()


def _headers(
    body: str, secret: str = SECRET, key_id: str = "k2", timestamp: int | None = None
) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        "Payflow-Key-Id": key_id,
        "Payflow-Timestamp": str(ts),
        "Payflow-Signature": signature_header(secret, ts, body),
    }


async def _post(
    settings: Settings,
    body: str | bytes,
    headers: dict[str, str],
    provider: str = "direct",
) -> tuple[int, dict[str, Any]]:
    data = body.encode() if isinstance(body, str) else body
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{settings.webhook_url}/{provider}", data=data, headers=headers) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


async def _metric(settings: Settings, provider: str, outcome: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(_root(settings) + "/metrics") as resp:
        text = await resp.text()
    wanted = f'payflow_webhook_callbacks_total{{outcome="{outcome}",provider="{provider}"}}'
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


async def _rejections(pool: asyncpg.Pool, body: bytes) -> list[str]:
    rows = await pool.fetch(
        "SELECT reason_code FROM webhook_rejections WHERE body = $1 ORDER BY rejection_id", body
    )
    return [r["reason_code"] for r in rows]


def _consumer(settings: Settings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"test-webhook-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
    )


async def _ends(settings: Settings) -> dict[TopicPartition, int]:
    consumer = _consumer(settings)
    await consumer.start()
    try:
        tps = [TopicPartition(GATEWAY_CALLBACKS.name, p) for p in range(settings.topic_partitions)]
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def _read_back(
    settings: Settings, since: dict[TopicPartition, int], event_id: str
) -> GatewayCallbackReceived:
    consumer = _consumer(settings)
    await consumer.start()
    try:
        consumer.assign(list(since))
        for tp, offset in since.items():
            consumer.seek(tp, offset)
        for _ in range(50):
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for rec in records:
                    event = decode(rec.topic, rec.value)
                    if str(event.event_id) == event_id:
                        assert rec.key == event.correlation_id.encode()
                        assert isinstance(event, GatewayCallbackReceived)
                        return event
    finally:
        await consumer.stop()
    raise AssertionError(f"event {event_id} is not on {GATEWAY_CALLBACKS.name}")


async def test_a_good_callback_is_on_the_topic_before_its_200(
    running: Settings, pool: asyncpg.Pool
) -> None:
    body = _body(payment_id="pay-good-1")
    before = await _ends(running)
    accepted = await _metric(running, "direct", "accepted")
    status, answer = await _post(running, body, _headers(body))
    assert (status, answer["received"]) == (200, True)
    after = await _ends(running)  # read at once: the broker acknowledged before the answer
    assert sum(after.values()) == sum(before.values()) + 1
    event = await _read_back(running, before, answer["event_id"])
    payload = event.payload
    assert (payload.provider, payload.raw_body, payload.key_id) == ("direct", body, "k2")
    assert event.correlation_id == "pay-good-1"
    notice_id = json.loads(body)["callback_id"]
    assert event.idempotency_key == f"direct:{notice_id}"
    assert (
        await pool.fetchval(
            "SELECT event_id::text FROM webhook_receipts WHERE provider = 'direct' "
            "AND callback_id = $1",
            notice_id,
        )
        == answer["event_id"]
    )
    assert await _metric(running, "direct", "accepted") == accepted + 1


def _cases() -> list[tuple[str, Any]]:
    """(expected reason, how to build (body, headers, provider)) for each refusal."""
    return [
        ("bad_signature", lambda b: (b, _headers(b, secret="not-the-secret"), "direct")),
        ("bad_signature", lambda b: (b, _headers(b.replace("1899", "1898")), "direct")),
        ("bad_signature", lambda b: (b + " ", _headers(b), "direct")),
        ("stale_timestamp", lambda b: (b, _headers(b, timestamp=OLD), "direct")),
        (
            "future_timestamp",
            lambda b: (b, _headers(b, timestamp=int(time.time()) + 3600), "direct"),
        ),
        ("unknown_key_id", lambda b: (b, _headers(b, key_id="k9"), "direct")),
        (
            "unsupported_media_type",
            lambda b: (b, {**_headers(b), "Content-Type": "text/plain"}, "direct"),
        ),
        ("unknown_provider", lambda b: (b, _headers(b), "paypal")),
        ("missing_headers", lambda b: (b, {"Content-Type": "application/json"}, "direct")),
        (
            "malformed_headers",
            lambda b: (b, {**_headers(b), "Payflow-Timestamp": "yesterday"}, "direct"),
        ),
        ("malformed_notice", lambda b: ("{}", _headers("{}"), "direct")),
    ]


STATUS = {
    "bad_signature": 401,
    "stale_timestamp": 401,
    "future_timestamp": 401,
    "unknown_key_id": 401,
    "replayed_callback": 401,
    "unsupported_media_type": 415,
    "unknown_provider": 404,
    "missing_headers": 400,
    "malformed_headers": 400,
    "malformed_notice": 400,
    "body_too_large": 413,
}


async def test_each_refusal_is_answered_recorded_and_counted(
    running: Settings, pool: asyncpg.Pool
) -> None:
    for reason, build in _cases():
        body, headers, provider = build(_body())
        label = provider if provider == "direct" else "unknown"
        counted = await _metric(running, label, reason)
        status, answer = await _post(running, body, headers, provider)
        assert (status, answer["error"]) == (STATUS[reason], reason), (reason, answer)
        assert await _rejections(pool, body.encode()) == [reason]
        assert await _metric(running, label, reason) == counted + 1, reason
    row = await pool.fetchrow(
        "SELECT provider, key_id, timestamp_header, remote_addr, detail FROM webhook_rejections "
        "WHERE reason_code = 'stale_timestamp' ORDER BY rejection_id DESC LIMIT 1"
    )
    assert (row["provider"], row["key_id"], row["timestamp_header"]) == ("direct", "k2", str(OLD))
    assert row["remote_addr"] == "127.0.0.1" and "ago" in row["detail"]


async def test_a_callback_id_is_accepted_once(running: Settings, pool: asyncpg.Pool) -> None:
    body = _body()
    status, first = await _post(running, body, _headers(body))
    assert status == 200 and "duplicate" not in first
    # The gateway's retry of a callback whose 200 it lost: same body, signed afresh. It is on
    # the topic already: 200 with the first copy's event id, never published twice.
    status, answer = await _post(running, body, _headers(body, timestamp=int(time.time()) - 1))
    assert status == 200 and answer == {**first, "duplicate": True}
    assert await _rejections(pool, body.encode()) == []
    # Another body under the accepted callback id is refused.
    other = body.replace('"succeeded"', '"failed"')
    assert other != body
    status, answer = await _post(running, other, _headers(other))
    assert (status, answer["error"]) == (401, "replayed_callback")
    assert await _rejections(pool, other.encode()) == ["replayed_callback"]
    callback_id = json.loads(body)["callback_id"]
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM webhook_receipts WHERE callback_id = $1", callback_id
        )
        == 1
    )


async def test_concurrent_duplicates_are_accepted_once(
    running: Settings, pool: asyncpg.Pool
) -> None:
    body = _body()
    results = await asyncio.gather(*(_post(running, body, _headers(body)) for _ in range(5)))
    assert [s for s, _ in results] == [200] * 5
    assert len({a["event_id"] for _, a in results}) == 1  # one copy on the topic
    assert sorted(bool(a.get("duplicate")) for _, a in results) == [False] + [True] * 4


async def test_a_body_over_the_limit_is_413_and_recorded_cut(
    running: Settings, pool: asyncpg.Pool
) -> None:
    body = _body()
    padded = body[:-1] + "," + '"pad":"' + "x" * LIMIT + '"}'
    counted = await _metric(running, "direct", "body_too_large")
    status, answer = await _post(running, padded, _headers(padded))
    assert (status, answer["error"]) == (413, "body_too_large")
    stored = await pool.fetchval(
        "SELECT body FROM webhook_rejections WHERE reason_code = 'body_too_large' "
        "ORDER BY rejection_id DESC LIMIT 1"
    )
    assert len(stored) <= LIMIT and padded.encode().startswith(stored)
    assert await _metric(running, "direct", "body_too_large") == counted + 1


async def test_a_rotated_key_is_accepted_while_configured_and_refused_after(
    services: Settings, pool: asyncpg.Pool
) -> None:
    during, after = _body(), _body()
    async with _served(_settings(services)) as settings:
        status, _ = await _post(settings, during, _headers(during, OLD_SECRET, "k1"))
        assert status == 200
    dropped = {"gateway_previous_key_id": None, "gateway_previous_secret": None}
    async with _served(_settings(services, **dropped)) as settings:
        status, answer = await _post(settings, after, _headers(after, OLD_SECRET, "k1"))
        assert (status, answer["error"]) == (401, "unknown_key_id")
        assert (await _post(settings, after, _headers(after)))[0] == 200  # the new key works
    assert await _rejections(pool, after.encode()) == ["unknown_key_id"]


async def test_a_broker_that_does_not_take_it_is_503_and_nothing_is_kept(
    running: Settings, pool: asyncpg.Pool
) -> None:
    """The same webhook over a producer that cannot deliver: 503 (the gateway retries), no
    receipt, no rejection; the retry to a working webhook is accepted, not a replay."""
    settings = _settings(running.model_copy())
    host, port, path = listen_address(settings.webhook_url, "PAYFLOW_WEBHOOK_URL")
    producer = make_producer(settings, "test-webhook-closed")
    await producer.start()
    await producer.stop()  # a real producer that no longer reaches the broker
    runner = web.AppRunner(
        build_app(Webhook(settings, pool, producer, publish_timeout_s=1.0), path)
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        body = _body()
        counted = await _metric(settings, "direct", "unavailable")
        status, answer = await _post(settings, body, _headers(body))
        assert (status, answer["error"]) == (503, "unavailable")
        assert await _metric(settings, "direct", "unavailable") == counted + 1
    finally:
        await runner.cleanup()
    callback_id = json.loads(body)["callback_id"]
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM webhook_receipts WHERE callback_id = $1", callback_id
        )
        == 0
    )
    assert await _rejections(pool, body.encode()) == []
    assert (await _post(running, body, _headers(body)))[0] == 200
