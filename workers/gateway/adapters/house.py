"""What both products of the gateway house share: payouts and the daily statement (`/v1`)."""

from datetime import date
from typing import Any

from workers.gateway.adapters.fields import text
from workers.gateway.adapters.statement_csv import parse_statement
from workers.gateway.http import GatewayHttp
from workers.gateway.port import Payout, PayoutRequest, StatementLine


async def payout(http: GatewayHttp, req: PayoutRequest) -> Payout:
    """Paid (201) or declined by the bank (402, a definite answer, not an error)."""
    reply = await http.post(
        "/v1/payouts",
        {
            "payout_id": req.payout_id,
            "amount": req.amount.model_dump(),
            "destination": req.destination,
        },
        req.idempotency_key,
        answers=(402,),
    )

    def parse(data: Any) -> Payout:
        status = data["status"]
        if data["payout_id"] != req.payout_id:
            raise ValueError(f"answer is for payout {data['payout_id']!r}")
        if reply.status in (200, 201) and status == "paid":
            return Payout(req.payout_id, True, text(data["payout_ref"]), None, reply.exchange)
        if reply.status == 402 and status == "declined":
            reason = str(data.get("reason") or "declined")
            return Payout(req.payout_id, False, None, reason, reply.exchange)
        raise ValueError(f"status {status!r} with HTTP {reply.status}")

    return reply.read(parse)


async def statement(http: GatewayHttp, day: date) -> list[StatementLine]:
    reply = await http.get(f"/v1/statements/{day.isoformat()}")
    return reply.read_text(parse_statement)
