"""The gateway's payout call (withdrawals): request body, key, and whether it was paid."""

import json

import aiohttp

from contracts.events.wallet import WithdrawalRequestedPayload
from workers.gateway_request.client import GatewayReply, post_idempotent


def idempotency_key(operation_id: str) -> str:
    return f"payflow-payout:{operation_id}"


def request_body(w: WithdrawalRequestedPayload) -> str:
    return json.dumps(
        {
            "payout_id": w.operation_id,
            "amount": w.amount.model_dump(),
            "destination": w.destination,
        },
        sort_keys=True,
    )


def paid(reply: GatewayReply) -> bool:
    return reply.accepted and json.loads(reply.body).get("status") == "paid"


async def send_payout(
    http: aiohttp.ClientSession, base_url: str, body: str, key: str
) -> GatewayReply:
    return await post_idempotent(http, f"{base_url}/v1/payouts", body, key)
