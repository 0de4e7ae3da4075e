"""Callbacks that arrive together are written as groups (workers/webhook/receipts.py): each is
still answered for itself, each distinct callback is on the topic exactly once, and a group
that cannot be published keeps nothing of any of its callbacks."""

import asyncio
import json
from collections import Counter
from typing import Any

import asyncpg
from aiohttp import web
from aiokafka import AIOKafkaConsumer

from contracts.codec import decode
from infra.settings import Settings
from tests.integration.test_webhook import (
    _body,
    _consumer,
    _ends,
    _headers,
    _post,
    _settings,
    running,  # noqa: F401  # the fixture
)
from workers.runtime.kafka import make_producer
from workers.runtime.urls import listen_address
from workers.webhook.app import Webhook, build_app

BURST = 120


async def _event_ids_since(settings: Settings, since: dict[Any, int]) -> Counter[str]:
    """Every event id put on the callback topic since the offsets `since`, with its count."""
    consumer: AIOKafkaConsumer = _consumer(settings)
    await consumer.start()
    seen: Counter[str] = Counter()
    try:
        consumer.assign(list(since))
        for tp, offset in since.items():
            consumer.seek(tp, offset)
        ends = await consumer.end_offsets(list(since))
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for rec in records:
                    seen[str(decode(rec.topic, rec.value).event_id)] += 1
    finally:
        await consumer.stop()
    return seen


async def test_a_burst_is_answered_one_by_one_and_published_once_each(
    running: Settings,  # noqa: F811
    pool: asyncpg.Pool,
) -> None:
    distinct = [_body() for _ in range(BURST)]
    again = distinct[:10]  # the gateway's retries, in the same burst
    replay = distinct[10].replace('"succeeded"', '"failed"')  # another body, same callback id
    before = await _ends(running)
    results = await asyncio.gather(
        *(_post(running, b, _headers(b)) for b in distinct + again),
    )
    assert [s for s, _ in results] == [200] * (BURST + 10)
    answers = [a for _, a in results]
    firsts = {
        json.loads(b)["callback_id"]: a["event_id"]
        for b, a in zip(distinct, answers[:BURST], strict=True)
    }
    # Each copy of a callback is answered with the one event id it is on the topic as.
    for body, answer in zip(again, answers[BURST:], strict=True):
        assert answer["event_id"] == firsts[json.loads(body)["callback_id"]]
    assert Counter(bool(a.get("duplicate")) for a in answers) == {False: BURST, True: 10}
    status, answer = await _post(running, replay, _headers(replay))
    assert (status, answer["error"]) == (401, "replayed_callback")
    on_topic = await _event_ids_since(running, before)
    assert on_topic == Counter(set(firsts.values()))  # each once, nothing else
    stored = await pool.fetch(
        "SELECT callback_id, event_id::text FROM webhook_receipts WHERE callback_id = ANY($1)",
        list(firsts),
    )
    assert {r["callback_id"]: r["event_id"] for r in stored} == firsts


async def test_a_group_the_broker_does_not_take_keeps_nothing(
    services: Settings, pool: asyncpg.Pool
) -> None:
    """Many callbacks at once to a webhook whose producer cannot deliver: every one is 503
    and none has a receipt, so the gateway's retries are accepted later, not replays."""
    settings = _settings(services)
    host, port, path = listen_address(settings.webhook_url, "PAYFLOW_WEBHOOK_URL")
    producer = make_producer(settings, "test-webhook-groups-closed")
    await producer.start()
    await producer.stop()
    runner = web.AppRunner(
        build_app(Webhook(settings, pool, producer, publish_timeout_s=1.0), path)
    )
    await runner.setup()
    bodies = [_body() for _ in range(30)]
    try:
        await web.TCPSite(runner, host, port).start()
        results = await asyncio.gather(*(_post(settings, b, _headers(b)) for b in bodies))
    finally:
        await runner.cleanup()
    assert {(s, a["error"]) for s, a in results} == {(503, "unavailable")}
    ids = [json.loads(b)["callback_id"] for b in bodies]
    kept = await pool.fetchval(
        "SELECT count(*) FROM webhook_receipts WHERE callback_id = ANY($1)", ids
    )
    assert kept == 0
