"""An operator's story: the gateway rotates its signing key before we do. A callback signed
with the new key (here published on the callback topic directly, as a gateway integration
that bypasses the webhook would) fails verification and is dead-lettered: nothing is lost,
nothing is applied. The operator deploys the new key (keeping the old one as the previous
key) and replays the dead letters: the order completes, once; replaying again changes
nothing."""

import asyncio
import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from contracts import signing
from contracts.events.gateway import (
    GatewayCallbackBody,
    GatewayCallbackReceived,
    GatewayCallbackReceivedPayload,
)
from contracts.money import Money
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
NEW_KEY_ID, NEW_SECRET = "k2", "rotated-gateway-secret"
# The simulator never calls back, and the sweeper waits: the only callback is the test's.
QUIET = {"PAYFLOW_SIM_FAULTS": "lost_callback=1", "PAYFLOW_CALLBACK_GRACE_S": "3600"}


async def _pending_payment(pool: asyncpg.Pool, order_id: str) -> asyncpg.Record:
    async def pending() -> bool:
        return bool(
            await pool.fetchval(
                """SELECT 1 FROM payment_requests WHERE order_id = $1 AND status = 'pending'
                   AND gateway_ref IS NOT NULL""",
                order_id,
            )
        )

    await eventually(pending, 60, f"{order_id} charged at the gateway")
    row: asyncpg.Record = await pool.fetchrow(
        """SELECT payment_id, gateway_ref, amount, currency FROM payment_requests
           WHERE order_id = $1""",
        order_id,
    )
    return row


def _callback_signed_with_new_key(payment: asyncpg.Record) -> GatewayCallbackReceived:
    now = datetime.now(UTC)
    callback_id = f"cb-{uuid.uuid4().hex[:12]}"
    body = GatewayCallbackBody(
        callback_id=callback_id,
        gateway_ref=payment["gateway_ref"],
        payment_id=payment["payment_id"],
        status="succeeded",
        amount=Money(amount=payment["amount"], currency=payment["currency"]),
        occurred_at=now,
    ).model_dump_json()
    ts = int(time.time())
    return GatewayCallbackReceived.new(
        payment["payment_id"],
        GatewayCallbackReceivedPayload(
            provider="direct",
            raw_body=body,
            key_id=NEW_KEY_ID,
            timestamp=ts,
            signature=signing.sign(NEW_SECRET, ts, body),
            received_at=now,
        ),
        idempotency_key=f"direct:{callback_id}",
    )


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

    async with simulator(services, env=QUIET) as children:
        start_workers(children, env=QUIET)  # knows only key k1
        await publish(producer, order)
        payment = await _pending_payment(pool, order_id)
        await publish(producer, _callback_signed_with_new_key(payment))
        payment_id = payment["payment_id"]

        async def dead_lettered() -> bool:
            return bool(
                await pool.fetchval(
                    """SELECT 1 FROM dead_letters WHERE order_id = $1
                   AND reason_code = 'forged_callback'""",
                    payment_id,
                )
            )

        await eventually(dead_lettered, 60, "the callback dead-lettered")
        assert await order_state(pool, order_id) == "payment_requested"
        listed = json.loads(
            await asyncio.to_thread(
                _payflow, "dlq", "list", "--stage", "callback_handling", "--json"
            )
        )
        assert any(d["order_id"] == payment_id for d in listed)
        # Not poison (a signature we could not check yet): a case in the review queue too.
        opened = await pool.fetch(
            """SELECT c.state FROM review_cases c JOIN dead_letters d
                 ON c.subject = 'dead_letter:' || d.dead_letter_id
               WHERE c.kind = 'dead_letter' AND d.order_id = $1""",
            payment_id,
        )
        assert opened and {r["state"] for r in opened} == {"open"}

        await children.stop()  # the operator deploys the rotated key, keeping the old one
        start_workers(
            children,
            env=QUIET
            | {
                "PAYFLOW_GATEWAY_KEY_ID": NEW_KEY_ID,
                "PAYFLOW_GATEWAY_SECRET": NEW_SECRET,
                "PAYFLOW_GATEWAY_PREVIOUS_KEY_ID": services.gateway_key_id,
                "PAYFLOW_GATEWAY_PREVIOUS_SECRET": services.gateway_secret.get_secret_value(),
            },
        )
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
                "SELECT dead_letter_id FROM dead_letters WHERE order_id = $1", payment_id
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
        "SELECT min(replay_count) FROM dead_letters WHERE order_id = $1", payment_id
    )
    assert replayed >= 2
    closed = await pool.fetch(
        """SELECT c.state, c.resolution FROM review_cases c JOIN dead_letters d
             ON c.subject = 'dead_letter:' || d.dead_letter_id
           WHERE c.kind = 'dead_letter' AND d.order_id = $1""",
        payment_id,
    )
    assert {(r["state"], r["resolution"]) for r in closed} == {("resolved", "replayed")}
