"""The redirect / QR checkout API (`/v2`, Alipay-like): the buyer pays at a URL or QR code and
the result comes only by notify or a query. Payouts and statements are the house's `/v1`."""

from dataclasses import replace
from datetime import date
from typing import Any

from contracts.money import Money
from workers.gateway import notices
from workers.gateway.adapters import house
from workers.gateway.adapters.fields import optional_text, text, timestamp
from workers.gateway.http import GatewayHttp
from workers.gateway.port import (
    Charge,
    ChargeCreated,
    ChargeRequest,
    ChargeStatus,
    Exchange,
    Notice,
    Payout,
    PayoutRequest,
    Refund,
    RefundRequest,
    RefundStatus,
    StatementLine,
)

TRADE_STATUS: dict[str, ChargeStatus] = {
    "WAIT_BUYER_PAY": "pending",
    "TRADE_SUCCESS": "succeeded",
    "TRADE_CLOSED": "failed",  # unless we closed it: see trade_status
}
REFUND_STATUS: dict[str, RefundStatus] = {
    "REFUND_PENDING": "pending",
    "REFUND_SUCCESS": "succeeded",
    "REFUND_FAIL": "failed",
}
# close_reason of a trade closed by our own close call (a void), not by the buyer or a timeout.
CLOSED_BY_MERCHANT = frozenset({"closed_by_merchant", "merchant_closed"})


class RedirectGateway:
    name: str = "redirect"
    can_void: bool = True  # by closing the trade while it waits for the buyer

    def __init__(self, http: GatewayHttp) -> None:
        self.http = http

    async def create_payment(self, req: ChargeRequest) -> ChargeCreated:
        body = {
            "out_trade_no": req.payment_id,
            "subject": req.description or f"order {req.order_id}",
            "total_amount": req.amount.amount,
            "currency": req.amount.currency,
        }
        reply = await self.http.post("/v2/checkout", body, req.idempotency_key)

        def parse(data: Any) -> ChargeCreated:
            if data["out_trade_no"] != req.payment_id:
                raise ValueError(f"answer is for trade {data['out_trade_no']!r}")
            return ChargeCreated(
                gateway_ref=text(data["trade_no"]),
                status=trade_status(data["trade_status"], data.get("close_reason")),
                exchange=reply.exchange,
                pay_url=optional_text(data.get("pay_url")),
                qr_payload=optional_text(data.get("qr_code")),
            )

        return reply.read(parse)

    async def query_payment(self, payment_id: str) -> list[Charge]:
        reply = await self.http.get("/v2/trades", {"out_trade_no": payment_id})
        return reply.read(lambda data: [trade(t) for t in data["trades"]])

    async def void_payment(self, gateway_ref: str, idempotency_key: str) -> Charge:
        reply = await self.http.post(f"/v2/trades/{gateway_ref}/close", {}, idempotency_key)

        def parse(data: Any) -> Charge:
            closed = trade(data)
            if closed.status not in ("failed", "voided"):
                raise ValueError(f"close answered a trade that is {closed.status}")
            # The gateway answered our close: whatever reason it wrote, we voided this trade.
            return replace(closed, status="voided", failure_reason=None)

        return reply.read(parse)

    async def refund(self, req: RefundRequest) -> Refund:
        body = {
            "out_request_no": req.refund_id,
            "trade_no": req.gateway_ref,
            "refund_amount": req.amount.amount,
            "currency": req.amount.currency,
            "reason": req.reason,
        }
        reply = await self.http.post("/v2/refunds", body, req.idempotency_key)
        return reply.read(lambda data: refund(data, reply.exchange))

    async def query_refund(self, refund_id: str) -> Refund | None:
        reply = await self.http.get("/v2/refunds", {"out_request_no": refund_id})
        found = reply.read(lambda data: [refund(r, reply.exchange) for r in data["refunds"]])
        return next((r for r in found if r.refund_id == refund_id), None)

    async def payout(self, req: PayoutRequest) -> Payout:
        return await house.payout(self.http, req)

    async def statement(self, day: date) -> list[StatementLine]:
        return await house.statement(self.http, day)

    def read_notice(self, raw_body: str) -> Notice:
        return notices.read_notice(self.name, raw_body)


def trade_status(value: Any, close_reason: Any = None) -> ChargeStatus:
    if value not in TRADE_STATUS:
        raise ValueError(f"trade_status {value!r} is not one of {', '.join(TRADE_STATUS)}")
    if value == "TRADE_CLOSED" and str(close_reason or "").lower() in CLOSED_BY_MERCHANT:
        return "voided"
    return TRADE_STATUS[value]


def trade(data: Any) -> Charge:
    status = trade_status(data["trade_status"], data.get("close_reason"))
    return Charge(
        gateway_ref=text(data["trade_no"]),
        payment_id=text(data["out_trade_no"]),
        status=status,
        amount=Money(amount=data["total_amount"], currency=data["currency"]),
        failure_reason=optional_text(data.get("close_reason")) if status == "failed" else None,
        created_at=timestamp(data.get("gmt_create")),
    )


def refund(data: Any, exchange: Exchange) -> Refund:
    status = data["refund_status"]
    if status not in REFUND_STATUS:
        raise ValueError(f"refund_status {status!r} is not one of {', '.join(REFUND_STATUS)}")
    return Refund(
        refund_id=text(data["out_request_no"]),
        refund_ref=text(data["refund_no"]),
        gateway_ref=text(data["trade_no"]),
        status=REFUND_STATUS[status],
        amount=Money(amount=data["refund_amount"], currency=data["currency"]),
        failure_reason=optional_text(data.get("fail_reason")),
        exchange=exchange,
    )
