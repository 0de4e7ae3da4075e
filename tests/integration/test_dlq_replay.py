"""An operator's story: the gateway rotates its signing secret before we do. Its callbacks
fail verification and are dead-lettered (nothing is lost, nothing is applied). The operator
deploys the new secret and replays the dead letters: the orders complete, once; replaying
again changes nothing."""

import asyncio
import json
import subprocess
import sys
import uuid

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from infra.settings import Settings
from tests.support.pipeline import (
    eventually,
    order_state,
    order_submitted,
    publish,
    seed_catalogue,
    simulator,
    start_workers,
)

pytestmark = pytest.mark.integration
NEW_SECRET = "rotated-gateway-secret"


async def _metric(settings: Settings, name: str, stage: str) -> float:
    url = f"http://127.0.0.1:{settings.metrics_port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith(f'{name}{{stage="{stage}"}}'):
            return float(line.split()[-1])
    return 0.0


def _payflow(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "workers.cli.main", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


async def test_replayed_dead_letters_complete_once(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    order_id = f"rot-{uuid.uuid4().hex[:8]}"
    order = order_submitted(order_id, "buyer-rotation", {"sku-lamp": 1}, "gateway_only")

    async with simulator(services, env={"PAYFLOW_GATEWAY_SECRET": NEW_SECRET}) as children:
        start_workers(children)  # still on the old secret
        await publish(producer, order)

        async def dead_lettered() -> bool:
            return bool(
                await pool.fetchval(
                    """SELECT 1 FROM dead_letters WHERE order_id = $1
                   AND reason_code = 'forged_callback'""",
                    order_id,
                )
            )

        await eventually(dead_lettered, 60, "the callback dead-lettered")
        assert await order_state(pool, order_id) == "payment_requested"
        listed = json.loads(
            await asyncio.to_thread(
                _payflow, "dlq", "list", "--stage", "callback_handling", "--json"
            )
        )
        assert any(d["order_id"] == order_id for d in listed)

        await children.stop()  # the operator deploys the rotated secret
        start_workers(children, env={"PAYFLOW_GATEWAY_SECRET": NEW_SECRET})
        out = await asyncio.to_thread(
            _payflow,
            "dlq",
            "replay",
            "--all",
            "--stage",
            "callback_handling",
            "--reason",
            "forged_callback",
        )
        assert "replayed" in out

        async def settled() -> bool:
            return await order_state(pool, order_id) == "settled"

        await eventually(settled, 60, f"{order_id} settled after the replay")
        ids = [
            r["dead_letter_id"]
            for r in await pool.fetch(
                "SELECT dead_letter_id FROM dead_letters WHERE order_id = $1", order_id
            )
        ]
        await asyncio.to_thread(_payflow, "dlq", "replay", "--force", *map(str, ids))

        async def seen_as_duplicate() -> bool:
            return await _metric(services, "payflow_duplicates_total", "callback_handling") >= 1

        await eventually(seen_as_duplicate, 60, "the second replay dropped by the inbox")

    assert await order_state(pool, order_id) == "settled"
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM ledger_transactions WHERE order_id = $1", order_id
        )
        == 1
    )
    replayed = await pool.fetchval(
        "SELECT min(replay_count) FROM dead_letters WHERE order_id = $1", order_id
    )
    assert replayed >= 2
