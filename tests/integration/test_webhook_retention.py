"""The webhook's tables pruned past PAYFLOW_WEBHOOK_RETENTION_DAYS, against the real webhook,
Kafka and Postgres: old receipts and rejections go in bounded batches (the server prunes on its
own), recent ones stay; a replay inside the tolerance is known as a duplicate, and once a
receipt is pruned its replay is refused as stale, never accepted as new."""

import time
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from aiohttp import web
from aiokafka import AIOKafkaProducer

from infra.settings import Settings
from tests.integration.test_webhook import _body, _headers, _post, _served, _settings
from tests.support.pipeline import eventually
from workers.runtime.urls import listen_address
from workers.webhook import retention, store
from workers.webhook.app import Webhook, build_app

pytestmark = pytest.mark.integration

DAY = 86_400


async def _plant(pool: asyncpg.Pool, tag: str, receipts: int, rejections: int, age_s: int) -> None:
    """Receipts and rejections `age_s` old, their callback ids / details marked with `tag`."""
    at = time.time() - age_s
    await pool.execute(
        """INSERT INTO webhook_receipts (provider, callback_id, event_id, payment_id, key_id,
               signed_at, received_at)
           SELECT 'direct', $1 || i, gen_random_uuid(), 'pay-' || i, 'k1', $2, $3
           FROM generate_series(1, $4) AS i""",
        f"{tag}-",
        int(at),
        datetime.fromtimestamp(at, UTC),
        receipts,
    )
    for _ in range(rejections):
        row = store.RejectedCallback(
            "direct",
            "bad_signature",
            tag,
            "k1",
            str(int(at)),
            "127.0.0.1",
            b"{}",
            datetime.fromtimestamp(at, UTC),
        )
        await store.record_rejection(pool, row)


async def _left(pool: asyncpg.Pool, tag: str) -> tuple[int, int]:
    receipts = await pool.fetchval(
        "SELECT count(*) FROM webhook_receipts WHERE callback_id LIKE $1", f"{tag}-%"
    )
    rejections = await pool.fetchval(
        "SELECT count(*) FROM webhook_rejections WHERE detail = $1", tag
    )
    return receipts, rejections


async def test_old_rows_are_pruned_in_batches_and_recent_ones_kept(
    services: Settings, pool: asyncpg.Pool
) -> None:
    old, recent = f"old-{uuid.uuid4().hex[:8]}", f"recent-{uuid.uuid4().hex[:8]}"
    retention_days = services.webhook_retention_days
    await _plant(pool, old, 2 * store.PRUNE_BATCH + 7, 4, age_s=retention_days * DAY + 60)
    await _plant(pool, recent, 3, 2, age_s=retention_days * DAY - 3600)
    # One batch is bounded, whatever is due.
    cutoff = int(time.time()) - retention_days * DAY
    assert await store.prune_receipts(pool, cutoff) == store.PRUNE_BATCH
    # The server prunes the rest on its own, batch after batch, and keeps what is recent.
    async with _served(_settings(services)):

        async def old_gone() -> bool:
            return await _left(pool, old) == (0, 0)

        await eventually(old_gone, 30, "old receipts and rejections pruned by the webhook")
    assert await _left(pool, recent) == (3, 2)


async def test_a_replay_is_a_duplicate_until_its_receipt_is_pruned_then_stale(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    """A webhook whose clock the test moves: the replay (same body, same signed headers) is
    answered as a duplicate while the receipt is kept, and refused as stale after pruning:
    pruning waits for the signed timestamp to be past the tolerance."""
    settings = _settings(services)
    now = [time.time()]

    def clock() -> float:
        return now[0]

    host, port, path = listen_address(settings.webhook_url, "PAYFLOW_WEBHOOK_URL")
    runner = web.AppRunner(build_app(Webhook(settings, pool, producer, clock=clock), path))
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        body = _body()
        headers = _headers(body, timestamp=int(now[0]))
        assert (await _post(settings, body, headers))[0] == 200
        # Inside the tolerance, after a pruning pass: the receipt is kept, so the copy is
        # known as the one on the topic (200, duplicate), never published again.
        now[0] += settings.callback_tolerance_s - 5
        await retention.prune(pool, settings.webhook_retention_days, now[0])
        status, answer = await _post(settings, body, headers)
        assert (status, answer.get("duplicate")) == (200, True)
        # Past the retention the receipt is pruned; the same replay is now stale.
        now[0] += settings.webhook_retention_days * DAY
        pruned = await retention.prune(pool, settings.webhook_retention_days, now[0])
        assert pruned.receipts >= 1
        status, answer = await _post(settings, body, headers)
        assert (status, answer["error"]) == (401, "stale_timestamp")
    finally:
        await runner.cleanup()
