"""HTTP client for the gateway's payout call (withdrawals)."""

import json
from dataclasses import dataclass

import aiohttp

from contracts.events.wallet import WithdrawalRequestedPayload
from workers.runtime.errors import TransientError


@dataclass(frozen=True)
class PayoutReply:
    status: int
    body: str

    @property
    def paid(self) -> bool:
        return self.status in (200, 201) and json.loads(self.body).get("status") == "paid"


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


async def send_payout(
    http: aiohttp.ClientSession, base_url: str, body: str, key: str
) -> PayoutReply:
    """A timeout or 5xx is an unknown outcome: retried with the same key, never paid twice."""
    try:
        async with http.post(
            f"{base_url}/v1/payouts",
            data=body,
            timeout=aiohttp.ClientTimeout(total=10),
            headers={"Content-Type": "application/json", "Idempotency-Key": key},
        ) as resp:
            text = await resp.text()
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise TransientError(f"payout outcome unknown: {exc!r}") from exc
    if resp.status >= 500 or resp.status == 429:
        raise TransientError(f"payout answered {resp.status}, outcome unknown")
    return PayoutReply(resp.status, text)
