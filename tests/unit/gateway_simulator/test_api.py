"""The HTTP API over a real (test) server, with callbacks captured by an in-memory sink."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from contracts.codec import decode, encode
from contracts.events.gateway import GatewayCallbackBody, GatewayCallbackReceived
from contracts.signing import verify
from contracts.topics import GATEWAY_CALLBACKS
from workers.gateway_simulator.api import DISPATCHER, REPLAYED_HEADER, build_app

SECRET = "test-secret"


@dataclass
class MemorySink:
    events: list[GatewayCallbackReceived] = field(default_factory=list)
    fail_first: int = 0  # raise on this many calls before accepting
    calls: int = 0

    async def __call__(self, event: GatewayCallbackReceived) -> None:
        self.calls += 1
        if self.calls <= self.fail_first:
            raise ConnectionError("broker unavailable")
        self.events.append(event)

    def bodies(self) -> list[GatewayCallbackBody]:
        return [GatewayCallbackBody.model_validate_json(e.payload.raw_body) for e in self.events]


@dataclass
class Sim:
    client: TestClient[web.Request, web.Application]
    sink: MemorySink
    app: web.Application

    async def pay(self, key: str | None, **overrides: Any) -> tuple[int, Any, Any]:
        body = charge_body(**overrides)
        headers = {"Idempotency-Key": key} if key is not None else {}
        resp = await self.client.post("/v1/payments", json=body, headers=headers)
        return resp.status, await resp.json(), resp.headers

    async def callbacks(self) -> list[GatewayCallbackReceived]:
        await self.app[DISPATCHER].drain()
        return self.sink.events


def charge_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "payment_id": "pay-1",
        "order_id": "ord-1",
        "amount": {"amount": 1000, "currency": "EUR"},
        "description": "order ord-1",
    }
    body.update(overrides)
    return body


def money(amount: Any, currency: str = "EUR") -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


@asynccontextmanager
async def simulator(delay_ms: int = 0, fail_first: int = 0) -> AsyncIterator[Sim]:
    sink = MemorySink(fail_first=fail_first)
    app = build_app(SECRET, sink, delay_ms, retry_initial_s=0.001, retry_max_s=0.01)
    async with TestClient(TestServer(app)) as client:
        yield Sim(client, sink, app)


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    async with simulator() as s:
        yield s


async def test_new_charge_is_pending_and_gets_one_signed_callback(sim: Sim) -> None:
    status, body, _ = await sim.pay("key-1")
    assert status == 201
    assert body["payment_id"] == "pay-1"
    assert body["status"] == "pending"
    assert body["gateway_ref"].startswith("gw_")

    [event] = await sim.callbacks()
    assert event.correlation_id == "ord-1"
    assert event.payload.provider == "simulator"
    assert verify(SECRET, event.payload.raw_body, event.payload.signature)
    assert not verify("another-secret", event.payload.raw_body, event.payload.signature)
    cb = GatewayCallbackBody.model_validate_json(event.payload.raw_body)
    assert (cb.gateway_ref, cb.payment_id, cb.status) == (body["gateway_ref"], "pay-1", "succeeded")
    assert (cb.amount.amount, cb.amount.currency) == (1000, "EUR")
    assert cb.failure_reason is None
    assert event.idempotency_key == f"gw-callback:{cb.callback_id}"
    # What goes to Kafka passes the topic's contract.
    assert decode(GATEWAY_CALLBACKS.name, encode(event)) == event


async def test_same_key_same_params_replays_without_second_charge(sim: Sim) -> None:
    status1, body1, headers1 = await sim.pay("key-1")
    status2, body2, headers2 = await sim.pay("key-1")
    assert (status1, status2) == (201, 200)
    assert body2 == body1
    assert REPLAYED_HEADER not in headers1
    assert headers2[REPLAYED_HEADER] == "true"
    assert len(await sim.callbacks()) == 1


async def test_same_key_different_params_is_a_conflict(sim: Sim) -> None:
    assert (await sim.pay("key-1"))[0] == 201
    status, body, _ = await sim.pay("key-1", amount=money(2000))
    assert status == 409
    assert body["error"] == "idempotency_key_reused"
    assert len(await sim.callbacks()) == 1


async def test_new_key_for_existing_payment_returns_the_existing_charge(sim: Sim) -> None:
    _, first, _ = await sim.pay("key-1")
    status, again, headers = await sim.pay("key-2", description="retried by another worker")
    assert status == 200
    assert again["gateway_ref"] == first["gateway_ref"]
    assert REPLAYED_HEADER not in headers
    assert len(await sim.callbacks()) == 1


async def test_new_key_for_existing_payment_with_other_amount_is_a_conflict(sim: Sim) -> None:
    await sim.pay("key-1")
    status, body, _ = await sim.pay("key-2", amount=money(1001))
    assert status == 409
    assert body["error"] == "payment_id_reused"


async def test_missing_idempotency_key_is_refused(sim: Sim) -> None:
    for key in (None, "", "   "):
        status, body, _ = await sim.pay(key)
        assert status == 400
        assert body["error"] == "missing_idempotency_key"
        assert "Idempotency-Key" in body["detail"]
    status, body, _ = await sim.pay("k" * 256)
    assert (status, body["error"]) == (400, "invalid_idempotency_key")
    assert await sim.callbacks() == []


@pytest.mark.parametrize(
    ("overrides", "field_named"),
    [
        ({"amount": money(10.0)}, "amount.amount"),
        ({"amount": money(10.5)}, "amount.amount"),
        ({"amount": money("1000")}, "amount.amount"),
        ({"amount": money(-1)}, "amount.amount"),
        ({"amount": money(1000, "XXX")}, "amount.currency"),
        ({"order_id": None}, "order_id"),
        ({"payment_id": "has spaces"}, "payment_id"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_invalid_body_names_the_field(
    sim: Sim, overrides: dict[str, Any], field_named: str
) -> None:
    status, body, _ = await sim.pay("key-1", **overrides)
    assert status == 400
    assert body["error"] == "invalid_request"
    assert field_named in body["detail"]


async def test_missing_field_and_bad_json_are_refused(sim: Sim) -> None:
    resp = await sim.client.post(
        "/v1/payments", json={"payment_id": "p"}, headers={"Idempotency-Key": "k"}
    )
    detail = (await resp.json())["detail"]
    assert resp.status == 400
    assert "order_id: Field required" in detail
    assert "amount: Field required" in detail

    resp = await sim.client.post(
        "/v1/payments", data=b"{not json", headers={"Idempotency-Key": "k"}
    )
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_json"
    assert await sim.callbacks() == []


async def test_invalid_request_does_not_burn_the_key(sim: Sim) -> None:
    assert (await sim.pay("key-1", amount=money(1.5)))[0] == 400
    assert (await sim.pay("key-1"))[0] == 201


async def test_status_is_pending_then_final() -> None:
    async with simulator(delay_ms=200) as sim:
        _, created, _ = await sim.pay("key-1", amount=money(513))
        url = f"/v1/payments/{created['gateway_ref']}"
        resp = await sim.client.get(url)
        assert resp.status == 200
        view = await resp.json()
        assert (view["status"], view["failure_reason"]) == ("pending", None)
        assert view["amount"] == money(513)
        assert (view["order_id"], view["payment_id"]) == ("ord-1", "pay-1")
        assert sim.sink.events == []

        await sim.callbacks()
        view = await (await sim.client.get(url)).json()
        assert (view["status"], view["failure_reason"]) == ("failed", "card_declined")


async def test_unknown_gateway_ref_is_404(sim: Sim) -> None:
    resp = await sim.client.get("/v1/payments/gw_nope")
    assert resp.status == 404
    assert (await resp.json())["error"] == "not_found"


async def test_declined_rule(sim: Sim) -> None:
    await sim.pay("key-1", amount=money(2_013))
    await sim.callbacks()
    [cb] = sim.sink.bodies()
    assert (cb.status, cb.failure_reason, cb.amount.amount) == ("failed", "card_declined", 2_013)


async def test_duplicate_rule_delivers_the_same_callback_twice(sim: Sim) -> None:
    await sim.pay("key-1", amount=money(1_042))
    first, second = await sim.callbacks()
    assert first.payload.raw_body == second.payload.raw_body
    assert first.payload.signature == second.payload.signature
    assert first.idempotency_key == second.idempotency_key
    assert verify(SECRET, second.payload.raw_body, second.payload.signature)
    # Two deliveries, as two webhook requests would be: distinct events, one callback_id.
    assert first.event_id != second.event_id
    assert len({b.callback_id for b in sim.sink.bodies()}) == 1


async def test_over_report_rule_reports_one_unit_more_than_charged(sim: Sim) -> None:
    _, created, _ = await sim.pay("key-1", amount=money(1_099))
    await sim.callbacks()
    [cb] = sim.sink.bodies()
    assert (cb.status, cb.amount.amount) == ("succeeded", 1_100)
    view = await (await sim.client.get(f"/v1/payments/{created['gateway_ref']}")).json()
    assert view["amount"]["amount"] == 1_099  # what was really charged


async def test_failing_sink_is_retried_until_delivered() -> None:
    async with simulator(fail_first=3) as sim:
        await sim.pay("key-1")
        events = await sim.callbacks()
        assert sim.sink.calls == 4
        assert len(events) == 1


async def test_shutdown_flushes_pending_callbacks() -> None:
    async with simulator(delay_ms=50) as sim:
        await sim.pay("key-1")
        assert sim.sink.events == []
    assert len(sim.sink.events) == 1  # delivered during the app's cleanup


async def test_concurrent_requests_with_one_key_make_one_charge(sim: Sim) -> None:
    results = await asyncio.gather(*(sim.pay("key-1") for _ in range(10)))
    assert sorted(status for status, _, _ in results) == [200] * 9 + [201]
    assert len({body["gateway_ref"] for _, body, _ in results}) == 1
    assert len(await sim.callbacks()) == 1


async def test_healthz(sim: Sim) -> None:
    resp = await sim.client.get("/healthz")
    assert resp.status == 200
    assert (await resp.json())["status"] == "ok"
