"""HTTP client for the payment gateway: charges (create-payment) and payouts."""

import json
from dataclasses import dataclass

import aiohttp

from contracts.money import Money
from workers.runtime.errors import TransientError


@dataclass(frozen=True)
class GatewayReply:
    status: int
    body: str

    @property
    def accepted(self) -> bool:
        return self.status in (200, 201)


def request_body(payment_id: str, order_id: str, amount: Money) -> str:
    return json.dumps(
        {
            "payment_id": payment_id,
            "order_id": order_id,
            "amount": amount.model_dump(),
            "description": f"order {order_id}",
        },
        sort_keys=True,
    )


async def post_idempotent(
    session: aiohttp.ClientSession, url: str, body: str, idempotency_key: str
) -> GatewayReply:
    """A timeout or 5xx is an unknown outcome, not a failure: raise TransientError so the call
    is retried with the same idempotency key, which the gateway answers without charging (or
    paying out) again."""
    try:
        async with session.post(
            url,
            data=body,
            headers={"Content-Type": "application/json", "Idempotency-Key": idempotency_key},
            timeout=aiohttp.ClientTimeout(total=10),
        ) as resp:
            text = await resp.text()
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise TransientError(f"gateway unreachable, outcome unknown: {exc!r}") from exc
    if resp.status >= 500 or resp.status == 429:
        raise TransientError(f"gateway answered {resp.status}, outcome unknown")
    return GatewayReply(resp.status, text)


async def create_payment(
    session: aiohttp.ClientSession, base_url: str, body: str, idempotency_key: str
) -> GatewayReply:
    return await post_idempotent(session, f"{base_url}/v1/payments", body, idempotency_key)
