"""The gateway simulator as a real process over HTTP: authentication, the redirect buyer,
and durability across kill -9 (charges, idempotency keys, pending callbacks)."""

import uuid
from pathlib import Path

import aiohttp
import pytest

from infra.settings import Settings
from tests.integration.test_gateway_simulator_support import (
    Gateway,
    Receiver,
    receiver,
    sim_env,
    start,
    wait_up,
)
from tests.support.pipeline import eventually
from workers.ops.processes import Children

pytestmark = pytest.mark.integration


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _charge(payment_id: str, amount: int = 1_000) -> dict[str, object]:
    return {
        "payment_id": payment_id,
        "order_id": f"ord-{payment_id}",
        "amount": {"amount": amount, "currency": "EUR"},
    }


async def test_auth_redirect_buyer_and_kill_9_restart(tmp_path: Path) -> None:
    settings = Settings()
    children = Children(settings.state_dir / "logs" / "tests")
    async with receiver(settings) as rec, aiohttp.ClientSession() as http:
        gw = Gateway(settings, http)
        env = sim_env(rec, tmp_path / "sim.sqlite3", PAYFLOW_SIM_CALLBACK_DELAY_MS="60000")
        start(children, env)
        try:
            await wait_up(gw)
            # No key, no charge.
            async with http.post(
                settings.gateway_url + "/v1/payments",
                json=_charge("x"),
                headers={"Idempotency-Key": "k"},
            ) as resp:
                assert resp.status == 401 and (await resp.json())["error"] == "unauthorized"
            async with http.get(
                settings.gateway_url + "/v2/trades", headers={"Authorization": "Bearer nope"}
            ) as resp:
                assert resp.status == 401

            # A redirect trade paid by the buyer at pay_url, announced by a signed notify.
            trade_id = _id("pay-r")
            status, trade, _ = await gw.post(
                "/v2/checkout",
                {
                    "out_trade_no": trade_id,
                    "subject": "order",
                    "total_amount": 700,
                    "currency": "EUR",
                },
                f"payflow:{trade_id}",
            )
            assert (status, trade["trade_status"]) == (201, "WAIT_BUYER_PAY")
            async with http.get(trade["pay_url"]) as resp:
                assert resp.status == 200
            await eventually(lambda: _has(rec, trade_id), 15, "redirect notify")
            [notify] = rec.for_payment(trade_id)
            assert notify.provider == "redirect" and notify.verified
            assert (notify.notice.status, notify.notice.gateway_ref) == (
                "succeeded",
                trade["trade_no"],
            )

            # A charge still pending (the delay is a minute) when the process is killed.
            paid = _id("pay-k")
            status, created, _ = await gw.post("/v1/payments", _charge(paid), f"payflow:{paid}")
            assert status == 201
            children.kill()  # kill -9
            children.procs.clear()
            children.names.clear()

            start(children, env)
            await wait_up(gw)
            # The key survived: a replay, not a second charge; a new key answers the charge.
            status, again, headers = await gw.post("/v1/payments", _charge(paid), f"payflow:{paid}")
            assert (status, again, headers.get("Idempotent-Replayed")) == (201, created, "true")
            status, body, _ = await gw.post("/v1/payments", _charge(paid, 2_000), f"payflow:{paid}")
            assert (status, body["error"]) == (409, "idempotency_key_reused")
            status, other, _ = await gw.post("/v1/payments", _charge(paid), "another-key")
            assert (status, other["gateway_ref"]) == (200, created["gateway_ref"])
            [charge] = await gw.charges(paid)
            assert (charge["gateway_ref"], charge["status"]) == (created["gateway_ref"], "pending")
            ref = created["gateway_ref"]
            status, voided, _ = await gw.post(
                f"/v1/payments/{ref}/void", {}, f"payflow:void:{paid}"
            )
            assert (status, voided["status"]) == (200, "voided")
        finally:
            await children.stop()


async def test_a_callback_pending_at_kill_9_is_sent_after_restart(tmp_path: Path) -> None:
    settings = Settings()
    children = Children(settings.state_dir / "logs" / "tests")
    async with receiver(settings) as rec, aiohttp.ClientSession() as http:
        gw = Gateway(settings, http)
        env = sim_env(rec, tmp_path / "sim.sqlite3")
        rec.answer = 503  # the webhook is down: the callback stays queued
        start(children, env)
        try:
            await wait_up(gw)
            paid = _id("pay-q")
            status, created, _ = await gw.post("/v1/payments", _charge(paid), f"payflow:{paid}")
            assert status == 201
            await eventually(lambda: _attempted(rec), 15, "a delivery attempt")
            status, health = await gw.get("/healthz", auth=False)
            assert health["pending_callbacks"] == 1
            children.kill()
            children.procs.clear()
            children.names.clear()
            rec.answer = None
            start(children, env)
            await wait_up(gw)
            await eventually(lambda: _has(rec, paid), 15, "the resumed callback")
            assert [d.notice.gateway_ref for d in rec.for_payment(paid)] == [created["gateway_ref"]]
        finally:
            await children.stop()


async def _has(rec: Receiver, payment_id: str) -> bool:
    return bool(rec.for_payment(payment_id))


async def _attempted(rec: Receiver) -> bool:
    return rec.attempts > 0
