"""One delivery attempt of a callback to the webhook: signed afresh, posted, and the answer
classified as delivered, retry (5xx, 408, 429, no answer) or rejected (any other 4xx)."""

import time
from dataclasses import dataclass
from typing import Literal

import aiohttp

from contracts.signing import KEY_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_header
from workers.gateway_simulator.callback_queue import Callback
from workers.gateway_simulator.config import SimConfig

Verdict = Literal["delivered", "retry", "rejected"]
ATTEMPT_TIMEOUT_S = 10.0
RETRYABLE_4XX = (408, 429)


@dataclass(frozen=True)
class Result:
    verdict: Verdict
    status: int | None
    detail: str


def classify(status: int) -> Verdict:
    if 200 <= status < 300:
        return "delivered"
    if status >= 500 or status in RETRYABLE_4XX or status < 200:
        return "retry"
    if 300 <= status < 400:
        return "retry"  # a redirect is not an answer: the webhook URL is wrong or moving
    return "rejected"


def signed_headers(cfg: SimConfig, cb: Callback, now: float) -> dict[str, str]:
    # bad_signature: the right key id, a wrong secret, as a gateway with a broken key store.
    secret = f"wrong-{cfg.secret}" if cb.wrong_key else cfg.secret
    timestamp = int(now)
    return {
        "Content-Type": "application/json",
        KEY_ID_HEADER: cfg.key_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature_header(secret, timestamp, cb.body),
    }


async def send(session: aiohttp.ClientSession, cfg: SimConfig, cb: Callback) -> Result:
    url = f"{cfg.webhook_url}/{cb.provider}"
    try:
        async with session.post(
            url,
            data=cb.body.encode(),
            headers=signed_headers(cfg, cb, time.time()),
            timeout=aiohttp.ClientTimeout(total=ATTEMPT_TIMEOUT_S),
            allow_redirects=False,
        ) as resp:
            text = (await resp.read()).decode("utf-8", errors="replace")[:500]
            return Result(classify(resp.status), resp.status, text)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return Result("retry", None, f"{type(exc).__name__}: {str(exc)[:200]}")
