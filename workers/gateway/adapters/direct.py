"""The direct card-charge API (`/v1`, Stripe-like): statuses are already ours."""

from datetime import date
from typing import Any, cast

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

CHARGE_STATUSES: tuple[ChargeStatus, ...] = ("pending", "succeeded", "failed", "voided")
REFUND_STATUSES: tuple[RefundStatus, ...] = ("pending", "succeeded", "failed")


class DirectGateway:
    name: str = "direct"
    can_void: bool = True

    def __init__(self, http: GatewayHttp) -> None:
        self.http = http

    async def create_payment(self, req: ChargeRequest) -> ChargeCreated:
        body = {
            "payment_id": req.payment_id,
            "order_id": req.order_id,
            "amount": req.amount.model_dump(),
            "description": req.description or f"order {req.order_id}",
        }
        reply = await self.http.post("/v1/payments", body, req.idempotency_key)

        def parse(data: Any) -> ChargeCreated:
            if data["payment_id"] != req.payment_id:
                raise ValueError(f"answer is for payment {data['payment_id']!r}")
            return ChargeCreated(
                gateway_ref=text(data["gateway_ref"]),
                status=charge_status(data["status"]),
                exchange=reply.exchange,
            )

        return reply.read(parse)

    async def query_payment(self, payment_id: str) -> list[Charge]:
        reply = await self.http.get("/v1/payments", {"payment_id": payment_id})
        return reply.read(lambda data: [charge(c) for c in data["data"]])

    async def void_payment(self, gateway_ref: str, idempotency_key: str) -> Charge:
        reply = await self.http.post(f"/v1/payments/{gateway_ref}/void", {}, idempotency_key)
        return reply.read(charge)

    async def refund(self, req: RefundRequest) -> Refund:
        body = {
            "refund_id": req.refund_id,
            "gateway_ref": req.gateway_ref,
            "amount": req.amount.model_dump(),
            "reason": req.reason,
        }
        reply = await self.http.post("/v1/refunds", body, req.idempotency_key)
        return reply.read(lambda data: refund(data, reply.exchange))

    async def query_refund(self, refund_id: str) -> Refund | None:
        reply = await self.http.get("/v1/refunds", {"refund_id": refund_id})
        found = reply.read(lambda data: [refund(r, reply.exchange) for r in data["data"]])
        return next((r for r in found if r.refund_id == refund_id), None)

    async def payout(self, req: PayoutRequest) -> Payout:
        return await house.payout(self.http, req)

    async def statement(self, day: date) -> list[StatementLine]:
        return await house.statement(self.http, day)

    def read_notice(self, raw_body: str) -> Notice:
        return notices.read_notice(self.name, raw_body)


def charge(data: Any) -> Charge:
    return Charge(
        gateway_ref=text(data["gateway_ref"]),
        payment_id=text(data["payment_id"]),
        status=charge_status(data["status"]),
        amount=Money.model_validate(data["amount"]),
        failure_reason=optional_text(data.get("failure_reason")),
        created_at=timestamp(data.get("created_at")),
    )


def refund(data: Any, exchange: Exchange) -> Refund:
    status = data["status"]
    if status not in REFUND_STATUSES:
        raise ValueError(f"refund status {status!r} is not one of {REFUND_STATUSES}")
    return Refund(
        refund_id=text(data["refund_id"]),
        refund_ref=text(data["refund_ref"]),
        gateway_ref=text(data["gateway_ref"]),
        status=cast(RefundStatus, status),
        amount=Money.model_validate(data["amount"]),
        failure_reason=optional_text(data.get("failure_reason")),
        exchange=exchange,
    )


def charge_status(value: Any) -> ChargeStatus:
    if value not in CHARGE_STATUSES:
        raise ValueError(f"charge status {value!r} is not one of {CHARGE_STATUSES}")
    return cast(ChargeStatus, value)
