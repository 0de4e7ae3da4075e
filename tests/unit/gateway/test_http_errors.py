"""What a gateway's answer means, decided once for every adapter: 4xx refused, everything
that may have been done (timeout, lost connection, 5xx, 429, an unreadable 2xx) unknown."""

import socket

import aiohttp
import pytest

from contracts.money import Money
from tests.unit.gateway.conftest import API_KEY, FakeGateway, settings_for
from workers.gateway.port import ChargeRequest, GatewayRefused, GatewayUnknown
from workers.gateway.registry import Gateways

CHARGE = ChargeRequest("pay-1", "ord-1", Money(amount=1000, currency="EUR"), "payflow:pay-1")


async def test_sends_api_key_and_idempotency_key(fake: FakeGateway, gateways: Gateways) -> None:
    fake.answer(
        "POST",
        "/v1/payments",
        201,
        {"gateway_ref": "gw_1", "payment_id": "pay-1", "status": "pending"},
    )
    await gateways.adapter("direct").create_payment(CHARGE)
    (seen,) = fake.seen
    assert seen.headers["Authorization"] == f"Bearer {API_KEY}"
    assert seen.headers["Idempotency-Key"] == "payflow:pay-1"
    assert seen.body == {
        "payment_id": "pay-1",
        "order_id": "ord-1",
        "amount": {"amount": 1000, "currency": "EUR"},
        "description": "order ord-1",
    }


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
async def test_5xx_and_429_are_unknown_with_evidence(
    fake: FakeGateway, gateways: Gateways, status: int
) -> None:
    fake.answer("POST", "/v1/payments", status, {"error": "boom", "detail": "down"})
    with pytest.raises(GatewayUnknown) as caught:
        await gateways.adapter("direct").create_payment(CHARGE)
    exc = caught.value
    assert f"answered {status}" in exc.evidence and "POST /v1/payments" in exc.evidence
    assert exc.exchange is not None and exc.exchange.status == status
    assert "payflow:pay-1" in exc.exchange.request and '"boom"' in exc.exchange.response
    assert API_KEY not in exc.evidence + exc.exchange.request + exc.exchange.response


async def test_a_timeout_is_unknown(fake: FakeGateway) -> None:
    fake.answer("POST", "/v1/payments", 201, {}, delay_s=5)
    async with aiohttp.ClientSession() as session:
        gateways = Gateways(settings_for(fake.url, gateway_timeout_s=0.2), session)
        with pytest.raises(GatewayUnknown) as caught:
            await gateways.adapter("direct").create_payment(CHARGE)
    assert "no answer" in caught.value.evidence
    assert caught.value.exchange is not None and caught.value.exchange.status is None


async def test_a_refused_connection_is_unknown() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the test calls it: nothing listens
    async with aiohttp.ClientSession() as session:
        gateways = Gateways(settings_for(f"http://127.0.0.1:{port}"), session)
        with pytest.raises(GatewayUnknown, match="no answer"):
            await gateways.adapter("redirect").create_payment(CHARGE)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        {"status": "pending"},
        {"gateway_ref": "gw_1", "payment_id": "pay-1", "status": "weird"},
    ],
)
async def test_an_unreadable_2xx_is_unknown(
    fake: FakeGateway, gateways: Gateways, body: object
) -> None:
    fake.answer("POST", "/v1/payments", 201, body)
    with pytest.raises(GatewayUnknown, match="cannot read"):
        await gateways.adapter("direct").create_payment(CHARGE)


async def test_an_answer_for_another_payment_is_unknown(
    fake: FakeGateway, gateways: Gateways
) -> None:
    fake.answer(
        "POST",
        "/v1/payments",
        201,
        {"gateway_ref": "gw_1", "payment_id": "pay-9", "status": "pending"},
    )
    with pytest.raises(GatewayUnknown, match="pay-9"):
        await gateways.adapter("direct").create_payment(CHARGE)


async def test_a_4xx_is_refused_with_the_gateways_reason(
    fake: FakeGateway, gateways: Gateways
) -> None:
    fake.answer(
        "POST",
        "/v1/payments",
        409,
        {"error": "idempotency_key_reused", "detail": "this key was used with other parameters"},
    )
    with pytest.raises(GatewayRefused) as caught:
        await gateways.adapter("direct").create_payment(CHARGE)
    exc = caught.value
    assert (exc.status, exc.code) == (409, "idempotency_key_reused")
    assert exc.detail == "this key was used with other parameters"
    assert exc.exchange is not None and exc.exchange.status == 409


async def test_a_4xx_without_an_error_body_is_still_refused(
    fake: FakeGateway, gateways: Gateways
) -> None:
    fake.answer("POST", "/v1/payments", 401, "go away", content_type="text/plain")
    with pytest.raises(GatewayRefused) as caught:
        await gateways.adapter("direct").create_payment(CHARGE)
    assert (caught.value.status, caught.value.code, caught.value.detail) == (
        401,
        "http_401",
        "go away",
    )
