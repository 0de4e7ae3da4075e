"""The HTTP API over a test server: authentication, idempotency, voids, refunds, statement."""

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.unit.gateway_simulator.helpers import API_KEY, sim_config
from workers.gateway_simulator.app import build_app

AUTH = {"Authorization": f"Bearer {API_KEY}"}
Client = TestClient[web.Request, web.Application]


async def _client(tmp_path: Path, faults: Mapping[str, float] | None = None, **t: int) -> Client:
    client: Client = TestClient(TestServer(build_app(sim_config(tmp_path, faults, **t))))
    await client.start_server()
    return client


@pytest.fixture
async def slow(tmp_path: Path) -> AsyncIterator[Client]:
    """Charges stay pending a minute: time to void them."""
    client = await _client(tmp_path / "slow", callback_delay_ms=60_000)
    yield client
    await client.close()


@pytest.fixture
async def quick(tmp_path: Path) -> AsyncIterator[Client]:
    client = await _client(tmp_path / "quick", callback_delay_ms=0)
    yield client
    await client.close()


def charge(payment_id: str = "pay-1", amount: int = 1_000, order: str = "ord-1") -> dict[str, Any]:
    return {
        "payment_id": payment_id,
        "order_id": order,
        "amount": {"amount": amount, "currency": "EUR"},
    }


async def post(client: Client, path: str, body: Any, key: str) -> tuple[int, Any, Any]:
    resp = await client.post(path, json=body, headers={**AUTH, "Idempotency-Key": key})
    return resp.status, await resp.json(), resp.headers


async def get(client: Client, path: str) -> Any:
    resp = await client.get(path, headers=AUTH)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def settled(client: Client, payment_id: str) -> dict[str, Any]:
    for _ in range(200):
        [found] = (await get(client, f"/v1/payments?payment_id={payment_id}"))["data"]
        if found["status"] != "pending":
            return dict(found)
        await asyncio.sleep(0.02)
    raise AssertionError(f"{payment_id} never settled")


async def test_every_api_route_needs_the_key_but_healthz(slow: Client) -> None:
    for method, path in [
        ("POST", "/v1/payments"),
        ("GET", "/v1/payments"),
        ("POST", "/v2/checkout"),
        ("GET", "/v2/trades"),
        ("POST", "/v1/payouts"),
        ("GET", "/v1/statements/2026-11-28"),
    ]:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY}):
            resp = await slow.request(method, path, headers=headers)
            assert resp.status == 401 and (await resp.json())["error"] == "unauthorized"
    health = await (await slow.get("/healthz")).json()
    assert health["status"] == "ok" and "pending_callbacks" in health


async def test_idempotency(slow: Client) -> None:
    status, first, _ = await post(slow, "/v1/payments", charge(), "k-1")
    assert (status, first["status"]) == (201, "pending")
    status, again, headers = await post(slow, "/v1/payments", charge(), "k-1")
    assert (status, again, headers.get("Idempotent-Replayed")) == (201, first, "true")
    status, body, _ = await post(slow, "/v1/payments", charge(amount=2_000), "k-1")
    assert (status, body["error"]) == (409, "idempotency_key_reused")
    # A new key for the same payment and terms answers the existing charge, never a second.
    status, other, _ = await post(slow, "/v1/payments", charge(), "k-2")
    assert (status, other["gateway_ref"]) == (200, first["gateway_ref"])
    status, body, _ = await post(slow, "/v1/payments", charge(amount=5), "k-3")
    assert (status, body["error"]) == (409, "payment_id_reused")
    assert len((await get(slow, "/v1/payments?payment_id=pay-1"))["data"]) == 1
    assert len((await get(slow, "/v1/payments"))["data"]) == 1  # no filter: all
    resp = await slow.post("/v1/payments", json=charge(), headers=AUTH)
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_idempotency_key"
    status, body, _ = await post(slow, "/v1/payments", {"payment_id": "x"}, "k-4")
    assert (status, body["error"]) == (400, "invalid_request")


async def test_void_only_while_pending(slow: Client, quick: Client) -> None:
    _, created, _ = await post(slow, "/v1/payments", charge(), "k-1")
    ref = created["gateway_ref"]
    status, voided, _ = await post(slow, f"/v1/payments/{ref}/void", {}, "v-1")
    assert (status, voided["status"]) == (200, "voided")
    status, body, _ = await post(slow, "/v1/payments/nope/void", {}, "v-2")
    assert (status, body["error"]) == (404, "not_found")
    _, paid, _ = await post(quick, "/v1/payments", charge(), "k-1")
    assert (await settled(quick, "pay-1"))["status"] == "succeeded"
    status, body, _ = await post(quick, f"/v1/payments/{paid['gateway_ref']}/void", {}, "v-3")
    assert (status, body["error"]) == (409, "not_voidable")
    _, trade, _ = await post(
        slow,
        "/v2/checkout",
        {"out_trade_no": "pay-2", "subject": "s", "total_amount": 500, "currency": "EUR"},
        "c-1",
    )
    status, closed, _ = await post(slow, f"/v2/trades/{trade['trade_no']}/close", {}, "v-4")
    assert (status, closed["trade_status"], closed["close_reason"]) == (
        200,
        "TRADE_CLOSED",
        "closed_by_merchant",
    )


async def test_refunds_never_exceed_what_was_captured(slow: Client, quick: Client) -> None:
    _, pending, _ = await post(slow, "/v1/payments", charge(), "k-1")
    body = {
        "refund_id": "r-0",
        "gateway_ref": pending["gateway_ref"],
        "amount": {"amount": 100, "currency": "EUR"},
        "reason": "x",
    }
    status, answer, _ = await post(slow, "/v1/refunds", body, "r-0")
    assert (status, answer["error"]) == (409, "not_captured")
    _, created, _ = await post(quick, "/v1/payments", charge(), "k-1")
    await settled(quick, "pay-1")
    ref = created["gateway_ref"]

    def refund(rid: str, amount: int) -> dict[str, Any]:
        return {
            "refund_id": rid,
            "gateway_ref": ref,
            "amount": {"amount": amount, "currency": "EUR"},
            "reason": "x",
        }

    status, r1, _ = await post(quick, "/v1/refunds", refund("r-1", 600), "r-1")
    assert (status, r1["status"]) == (201, "pending")
    status, answer, _ = await post(quick, "/v1/refunds", refund("r-2", 401), "r-2")
    assert (status, answer["error"]) == (409, "exceeds_captured")
    status, _, _ = await post(quick, "/v1/refunds", refund("r-2", 400), "r-2")
    assert status == 201
    for _ in range(200):
        [found] = (await get(quick, "/v1/refunds?refund_id=r-1"))["data"]
        if found["status"] == "succeeded":
            break
        await asyncio.sleep(0.02)
    assert found["status"] == "succeeded"


async def test_the_statement_lists_an_unannounced_charge(tmp_path: Path) -> None:
    client = await _client(tmp_path, {"unannounced_charge": 1.0}, callback_delay_ms=0)
    try:
        status, body, _ = await post(client, "/v1/payments", charge(), "k-1")
        assert status == 500
        status, again, headers = await post(client, "/v1/payments", charge(), "k-1")
        assert (status, again, headers.get("Idempotent-Replayed")) == (500, body, "true")
        found = await settled(client, "pay-1")
        assert found["status"] == "succeeded"
        day = datetime.now(UTC).date().isoformat()
        resp = await client.get(f"/v1/statements/{day}", headers=AUTH)
        text = await resp.text()
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [(r["kind"], r["reference"], r["amount"], r["fee"], r["net"]) for r in rows] == [
            ("charge", "pay-1", "1000", "59", "941")
        ]
        assert (tmp_path / "sim" / "statements" / f"{day}.csv").read_text() == text
        health = await (await client.get("/healthz")).json()
        assert health["pending_callbacks"] == 0  # never announced
    finally:
        await client.close()
