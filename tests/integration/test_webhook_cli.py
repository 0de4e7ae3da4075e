"""`payflow run webhook` as a process: it serves the webhook URL and stops on SIGTERM with exit
0; a port already taken is one line on stderr naming the variable, and a non-zero exit."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import aiohttp
import pytest

from contracts.signing import signature_header
from infra.settings import Settings
from tests.integration.test_cli import error_line, payflow

pytestmark = pytest.mark.integration

BODY = (
    '{"callback_id":"cb-cli-%s","gateway_ref":"gw-1","payment_id":"pay-cli-1",'
    '"status":"succeeded","amount":{"amount":100,"currency":"EUR"},'
    '"failure_reason":null,"occurred_at":"2026-01-01T00:00:00Z"}'
)


def _url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/webhooks"


async def test_run_webhook_serves_and_stops_on_sigterm(services: Settings) -> None:
    url = _url()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workers.cli.main",
        "run",
        "webhook",
        env=os.environ | {"PAYFLOW_WEBHOOK_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        root = url.rsplit("/", 1)[0]
        async with aiohttp.ClientSession() as http:
            for _ in range(150):
                assert proc.returncode is None, "payflow run webhook exited"
                try:
                    async with http.get(root + "/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.2)
            body = BODY % time.time_ns()
            ts = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "Payflow-Key-Id": services.gateway_key_id,
                "Payflow-Timestamp": str(ts),
                "Payflow-Signature": signature_header(
                    services.gateway_secret.get_secret_value(), ts, body
                ),
            }
            async with http.post(url + "/direct", data=body, headers=headers) as resp:
                assert resp.status == 200, await resp.text()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0


def test_a_taken_port_is_one_line(services: Settings) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        done = payflow(
            "run", "webhook", env={"PAYFLOW_WEBHOOK_URL": f"http://127.0.0.1:{port}/webhooks"}
        )
    line = error_line(done)
    assert f"127.0.0.1:{port}" in line and "PAYFLOW_WEBHOOK_URL" in line
