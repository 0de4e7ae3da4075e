"""The redirect adapter translates `/v2` (Alipay-like) trades into the port's shapes."""

import pytest

from contracts.money import Money
from tests.unit.gateway.conftest import FakeGateway
from workers.gateway.port import ChargeRequest, GatewayRefused, GatewayUnknown, RefundRequest
from workers.gateway.registry import Gateways

EUR = Money(amount=1000, currency="EUR")


def _trade(status: str, close_reason: str | None = None) -> dict[str, object]:
    return {
        "trade_no": "T1",
        "out_trade_no": "pay-1",
        "subject": "order ord-1",
        "trade_status": status,
        "total_amount": 1000,
        "currency": "EUR",
        "close_reason": close_reason,
        "gmt_create": "2026-11-28T07:00:00Z",
        "gmt_payment": None,
    }


async def test_checkout_gives_the_buyer_a_url_and_a_qr_code(
    fake: FakeGateway, gateways: Gateways
) -> None:
    fake.answer(
        "POST",
        "/v2/checkout",
        201,
        {
            "trade_no": "T1",
            "out_trade_no": "pay-1",
            "trade_status": "WAIT_BUYER_PAY",
            "pay_url": "http://gw/pay/T1",
            "qr_code": "qr:T1",
        },
    )
    redirect = gateways.adapter("redirect")
    created = await redirect.create_payment(ChargeRequest("pay-1", "ord-1", EUR, "payflow:pay-1"))
    assert (created.gateway_ref, created.status) == ("T1", "pending")
    assert (created.pay_url, created.qr_payload) == ("http://gw/pay/T1", "qr:T1")
    assert fake.seen[0].body == {
        "out_trade_no": "pay-1",
        "subject": "order ord-1",
        "total_amount": 1000,
        "currency": "EUR",
    }
    assert redirect.name == "redirect" and redirect.can_void


@pytest.mark.parametrize(
    ("trade_status", "close_reason", "ours", "reason"),
    [
        ("WAIT_BUYER_PAY", None, "pending", None),
        ("TRADE_SUCCESS", None, "succeeded", None),
        ("TRADE_CLOSED", "buyer_timeout", "failed", "buyer_timeout"),
        ("TRADE_CLOSED", None, "failed", None),
        ("TRADE_CLOSED", "closed_by_merchant", "voided", None),
    ],
)
async def test_trade_status_mapping(
    fake: FakeGateway,
    gateways: Gateways,
    trade_status: str,
    close_reason: str | None,
    ours: str,
    reason: str | None,
) -> None:
    fake.answer("GET", "/v2/trades", 200, {"trades": [_trade(trade_status, close_reason)]})
    (charge,) = await gateways.adapter("redirect").query_payment("pay-1")
    assert fake.seen[0].query == {"out_trade_no": "pay-1"}
    assert (charge.gateway_ref, charge.payment_id, charge.amount) == ("T1", "pay-1", EUR)
    assert (charge.status, charge.failure_reason) == (ours, reason)


async def test_an_unknown_trade_status_is_unknown(fake: FakeGateway, gateways: Gateways) -> None:
    fake.answer("GET", "/v2/trades", 200, {"trades": [_trade("TRADE_FINISHED")]})
    with pytest.raises(GatewayUnknown, match="TRADE_FINISHED"):
        await gateways.adapter("redirect").query_payment("pay-1")


async def test_close_is_our_void(fake: FakeGateway, gateways: Gateways) -> None:
    fake.answer("POST", "/v2/trades/T1/close", 200, _trade("TRADE_CLOSED", "anything"))
    voided = await gateways.adapter("redirect").void_payment("T1", "payflow:void:pay-1")
    assert (voided.status, voided.failure_reason) == ("voided", None)
    fake.answer("POST", "/v2/trades/T1/close", 409, {"error": "not_closable", "detail": "paid"})
    with pytest.raises(GatewayRefused, match="not_closable"):
        await gateways.adapter("redirect").void_payment("T1", "payflow:void:pay-1")


def _refund(status: str) -> dict[str, object]:
    return {
        "out_request_no": "ref-1",
        "refund_no": "R1",
        "trade_no": "T1",
        "refund_status": status,
        "refund_amount": 400,
        "currency": "EUR",
        "fail_reason": "bank" if status == "REFUND_FAIL" else None,
    }


@pytest.mark.parametrize(
    ("status", "ours"),
    [("REFUND_PENDING", "pending"), ("REFUND_SUCCESS", "succeeded"), ("REFUND_FAIL", "failed")],
)
async def test_refunds(fake: FakeGateway, gateways: Gateways, status: str, ours: str) -> None:
    redirect = gateways.adapter("redirect")
    fake.answer("POST", "/v2/refunds", 201, _refund("REFUND_PENDING"))
    req = RefundRequest(
        "ref-1", "T1", "pay-1", Money(amount=400, currency="EUR"), "late", "payflow:refund:ref-1"
    )
    created = await redirect.refund(req)
    assert (created.refund_ref, created.gateway_ref, created.status) == ("R1", "T1", "pending")
    assert fake.seen[0].body == {
        "out_request_no": "ref-1",
        "trade_no": "T1",
        "refund_amount": 400,
        "currency": "EUR",
        "reason": "late",
    }
    fake.answer("GET", "/v2/refunds", 200, {"refunds": [_refund(status)]})
    found = await redirect.query_refund("ref-1")
    assert found is not None and found.status == ours
    assert found.failure_reason == ("bank" if ours == "failed" else None)


def test_read_notice_is_the_redirect_provider(gateways: Gateways) -> None:
    body = (
        '{"notify_id":"n1","notify_type":"trade_status_sync","out_trade_no":"pay-1",'
        '"trade_no":"T1","trade_status":"TRADE_SUCCESS","total_amount":1000,"currency":"EUR"}'
    )
    notice = gateways.adapter("redirect").read_notice(body)
    assert (notice.payment_id, notice.gateway_ref, notice.status) == ("pay-1", "T1", "succeeded")
