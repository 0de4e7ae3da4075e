"""Payouts to bank accounts (withdrawals): answered synchronously, idempotent by key.

Rule: an amount whose last two digits are 13 is declined (account closed); any other is paid.
"""

import secrets
from typing import Any

from aiohttp import web
from pydantic import Field, ValidationError

from contracts.base import Identifier, StrictModel
from contracts.money import Money

IDEMPOTENCY_HEADER = "Idempotency-Key"


class PayoutRequest(StrictModel):
    payout_id: Identifier
    amount: Money
    destination: Identifier
    description: str | None = Field(default=None, max_length=500)


PAYOUTS = web.AppKey("payouts", dict)


def _answer(req: PayoutRequest) -> tuple[int, dict[str, Any]]:
    if req.amount.amount % 100 == 13:
        return 402, {"payout_id": req.payout_id, "status": "declined", "reason": "account_closed"}
    return 201, {
        "payout_id": req.payout_id,
        "status": "paid",
        "payout_ref": f"po_{secrets.token_hex(10)}",
    }


async def create_payout(request: web.Request) -> web.Response:
    key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
    if not key:
        return web.json_response(
            {
                "error": "missing_idempotency_key",
                "detail": f"the {IDEMPOTENCY_HEADER} header is required",
            },
            status=400,
        )
    try:
        req = PayoutRequest.model_validate_json(await request.read())
    except ValidationError as exc:
        return web.json_response({"error": "invalid_request", "detail": str(exc)[:500]}, status=400)
    seen: dict[str, tuple[str, int, dict[str, Any]]] = request.app[PAYOUTS]
    if key in seen:
        fingerprint, status, body = seen[key]
        if fingerprint != req.model_dump_json():
            return web.json_response(
                {
                    "error": "idempotency_key_reused",
                    "detail": "this Idempotency-Key was used with other parameters",
                },
                status=409,
            )
        # Replayed: the same answer, and the money is not sent twice.
        return web.json_response(body, status=status, headers={"Idempotent-Replayed": "true"})
    earlier = next((v for v in seen.values() if v[2]["payout_id"] == req.payout_id), None)
    # A new key for a payout already answered: never pay twice, answer as before.
    status, body = (earlier[1], earlier[2]) if earlier else _answer(req)
    seen[key] = (req.model_dump_json(), status, body)
    return web.json_response(body, status=status)


def add_payout_routes(app: web.Application) -> None:
    app[PAYOUTS] = {}
    app.router.add_post("/v1/payouts", create_payout)
