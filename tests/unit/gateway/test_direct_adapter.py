"""The direct adapter translates `/v1` answers into the port's shapes."""

from datetime import UTC, date, datetime

import pytest

from contracts.money import Money
from tests.unit.gateway.conftest import FakeGateway
from workers.gateway.port import (
    ChargeRequest,
    GatewayRefused,
    PayoutRequest,
    RefundRequest,
)
from workers.gateway.registry import Gateways

EUR = Money(amount=1000, currency="EUR")


def _charge(status: str, ref: str = "gw_1") -> dict[str, object]:
    return {
        "gateway_ref": ref,
        "payment_id": "pay-1",
        "order_id": "ord-1",
        "status": status,
        "amount": {"amount": 1000, "currency": "EUR"},
        "failure_reason": "card_declined" if status == "failed" else None,
        "created_at": "2026-11-28T07:00:00Z",
        "updated_at": "2026-11-28T07:00:01Z",
    }


async def test_create_payment(fake: FakeGateway, gateways: Gateways) -> None:
    fake.answer(
        "POST",
        "/v1/payments",
        201,
        {"gateway_ref": "gw_1", "payment_id": "pay-1", "status": "pending"},
    )
    created = await gateways.adapter("direct").create_payment(
        ChargeRequest("pay-1", "ord-1", EUR, "payflow:pay-1", "top-up")
    )
    assert (created.gateway_ref, created.status, created.pay_url) == ("gw_1", "pending", None)
    assert created.exchange.status == 201 and '"description":"top-up"' in created.exchange.request


@pytest.mark.parametrize("status", ["pending", "succeeded", "failed", "voided"])
async def test_query_payment_reads_every_charge(
    fake: FakeGateway, gateways: Gateways, status: str
) -> None:
    fake.answer(
        "GET", "/v1/payments", 200, {"data": [_charge(status), _charge("succeeded", "gw_2")]}
    )
    charges = await gateways.adapter("direct").query_payment("pay-1")
    assert fake.seen[0].query == {"payment_id": "pay-1"}
    assert [(c.gateway_ref, c.status) for c in charges] == [("gw_1", status), ("gw_2", "succeeded")]
    assert charges[0].amount == EUR
    assert charges[0].created_at == datetime(2026, 11, 28, 7, tzinfo=UTC)
    assert charges[0].failure_reason == ("card_declined" if status == "failed" else None)


async def test_query_payment_never_seen(fake: FakeGateway, gateways: Gateways) -> None:
    fake.answer("GET", "/v1/payments", 200, {"data": []})
    assert await gateways.adapter("direct").query_payment("pay-1") == []


async def test_void(fake: FakeGateway, gateways: Gateways) -> None:
    fake.answer("POST", "/v1/payments/gw_1/void", 200, _charge("voided"))
    voided = await gateways.adapter("direct").void_payment("gw_1", "payflow:void:pay-1")
    assert voided.status == "voided"
    assert fake.seen[0].headers["Idempotency-Key"] == "payflow:void:pay-1"


async def test_void_too_late_is_refused(fake: FakeGateway, gateways: Gateways) -> None:
    fake.answer(
        "POST", "/v1/payments/gw_1/void", 409, {"error": "not_voidable", "detail": "succeeded"}
    )
    with pytest.raises(GatewayRefused) as caught:
        await gateways.adapter("direct").void_payment("gw_1", "payflow:void:pay-1")
    assert caught.value.code == "not_voidable"


def _refund(status: str) -> dict[str, object]:
    return {
        "refund_id": "ref-1",
        "refund_ref": "rf_1",
        "gateway_ref": "gw_1",
        "status": status,
        "amount": {"amount": 400, "currency": "EUR"},
        "failure_reason": None,
        "created_at": "2026-11-28T07:00:00Z",
    }


async def test_refund_and_query_refund(fake: FakeGateway, gateways: Gateways) -> None:
    direct = gateways.adapter("direct")
    fake.answer("POST", "/v1/refunds", 201, _refund("pending"))
    req = RefundRequest(
        "ref-1", "gw_1", "pay-1", Money(amount=400, currency="EUR"), "late", "payflow:refund:ref-1"
    )
    refund = await direct.refund(req)
    assert (refund.refund_ref, refund.status, refund.amount.amount) == ("rf_1", "pending", 400)
    assert fake.seen[0].body == {
        "refund_id": "ref-1",
        "gateway_ref": "gw_1",
        "amount": {"amount": 400, "currency": "EUR"},
        "reason": "late",
    }
    fake.answer("GET", "/v1/refunds", 200, {"data": [_refund("succeeded")]})
    found = await direct.query_refund("ref-1")
    assert found is not None and found.status == "succeeded"
    fake.answer("GET", "/v1/refunds", 200, {"data": []})
    assert await direct.query_refund("ref-1") is None


async def test_refund_beyond_captured_is_refused(fake: FakeGateway, gateways: Gateways) -> None:
    fake.answer("POST", "/v1/refunds", 409, {"error": "exceeds_captured", "detail": "too much"})
    req = RefundRequest("ref-1", "gw_1", "pay-1", EUR, "late", "payflow:refund:ref-1")
    with pytest.raises(GatewayRefused, match="exceeds_captured"):
        await gateways.adapter("direct").refund(req)


async def test_payout_paid_and_declined(fake: FakeGateway, gateways: Gateways) -> None:
    req = PayoutRequest("wd-1", EUR, "iban-1", "payflow:payout:wd-1")
    fake.answer(
        "POST", "/v1/payouts", 201, {"payout_id": "wd-1", "status": "paid", "payout_ref": "po_1"}
    )
    paid = await gateways.adapter("direct").payout(req)
    assert (paid.paid, paid.payout_ref, paid.reason) == (True, "po_1", None)
    fake.answer(
        "POST", "/v1/payouts", 402, {"payout_id": "wd-1", "status": "declined", "reason": "bank"}
    )
    declined = await gateways.adapter("redirect").payout(req)  # the house's /v1 payouts
    assert (declined.paid, declined.payout_ref, declined.reason) == (False, None, "bank")
    assert declined.exchange.status == 402


async def test_statement(fake: FakeGateway, gateways: Gateways) -> None:
    csv = (
        "day,kind,gateway_ref,reference,currency,amount,fee,net,status,occurred_at\n"
        "2026-11-28,charge,gw_1,pay-1,EUR,1000,59,941,succeeded,2026-11-28T07:00:00Z\n"
    )
    fake.answer("GET", "/v1/statements/2026-11-28", 200, csv, content_type="text/csv")
    (line,) = await gateways.adapter("direct").statement(date(2026, 11, 28))
    assert (line.kind, line.reference, line.fee, line.net) == (
        "charge",
        "pay-1",
        Money(amount=59, currency="EUR"),
        Money(amount=941, currency="EUR"),
    )


def test_read_notice_is_the_direct_provider(gateways: Gateways) -> None:
    body = (
        '{"callback_id":"cb-1","kind":"payment","gateway_ref":"gw_1","payment_id":"pay-1",'
        '"status":"succeeded","amount":{"amount":1000,"currency":"EUR"},'
        '"occurred_at":"2026-11-28T07:00:00Z"}'
    )
    notice = gateways.adapter("direct").read_notice(body)
    assert (notice.callback_id, notice.status, notice.amount) == ("cb-1", "succeeded", EUR)
