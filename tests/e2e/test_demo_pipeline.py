"""The whole pipeline, as the README's first command runs it: `payflow demo --json` with
real Kafka, Postgres, Redis, all five stages and the gateway simulator as processes."""

import asyncio
import json
import subprocess
import sys

import asyncpg
import pytest

from infra.settings import Settings
from tests.support.pipeline import assert_audit_clean

pytestmark = pytest.mark.e2e
ORDERS = 240


def _demo() -> tuple[int, dict[str, object]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "workers.cli.main",
            "demo",
            "--orders",
            str(ORDERS),
            "--json",
            "--timeout",
            "240",
        ],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.stdout.strip(), done.stderr[-3000:]
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


async def test_every_order_reaches_its_final_state(services: Settings, pool: asyncpg.Pool) -> None:
    code, result = await asyncio.to_thread(_demo)
    assert code == 0, result
    assert result["orders"] == ORDERS
    finals = ("settled", "cancelled", "rejected", "manual_review")
    assert sum(int(result[k]) for k in finals) == ORDERS  # type: ignore[call-overload]
    assert result["in_flight"] == 0
    assert result["dead_letters"] == 0
    audit = result["audit"]
    assert isinstance(audit, dict) and audit["ok"] is True and audit["violations"] == []
    # 6 orders name a retired SKU; 4 compete for 3 units of a scarce one (only 1 fits).
    assert result["rejected"] == 9

    run = str(result["run_id"])
    states = {
        r["order_id"]: r["state"]
        for r in await pool.fetch(
            "SELECT order_id, state FROM orders WHERE order_id LIKE $1 || '%'", run
        )
    }
    for i in range(ORDERS):
        order_id = f"{run}-{i:05d}"
        if i % 50 == 3:  # the simulator declines this card
            assert states[order_id] == "cancelled"
        if i % 50 == 11:  # a callback with another amount: the gateway's record decides
            assert states[order_id] == "settled"
        if i % 50 == 7:  # callback delivered twice: settled once
            assert states[order_id] == "settled"
    # The second delivery of a callback is known at the webhook as the copy already on the
    # topic (answered 200, published once): every callback id reached the stage once.
    twice = await pool.fetchval(
        """SELECT count(*) FROM (
               SELECT c.callback_id FROM gateway_callbacks c
               JOIN payment_requests r USING (payment_id)
               WHERE r.order_id LIKE $1 || '%' AND c.callback_id IS NOT NULL
               GROUP BY c.provider, c.callback_id HAVING count(*) > 1) AS d""",
        run,
    )
    assert twice == 0
    # The callbacks with the wrong amount decided nothing and are kept for operators.
    disputed = await pool.fetchval(
        """SELECT count(DISTINCT c.payment_id) FROM gateway_callbacks c
           JOIN payment_requests r USING (payment_id)
           WHERE r.order_id LIKE $1 || '%' AND c.verdict = 'mismatch'""",
        run,
    )
    assert disputed >= ORDERS // 50
    await assert_audit_clean(pool)
