"""Asking the gateway for a charge: bounded attempts with the same idempotency key, every
exchange kept as evidence. Shared by order payments (gateway_request) and wallet top-ups (wallet)."""

import asyncio
import time

from infra.settings import Settings
from workers.gateway.port import ChargeRequest, Gateway, GatewayRefused, GatewayUnknown
from workers.payments import rules
from workers.payments.rules import Asked


async def ask(gateway: Gateway, req: ChargeRequest, settings: Settings) -> Asked:
    """Create the charge, retrying an unknown answer with the same key within the budget."""
    evidence: list[dict[str, object]] = []
    started = time.monotonic()
    budget = rules.call_budget_s(settings.retry_budget_s)
    tried = 0
    while True:
        tried += 1
        try:
            created = await gateway.create_payment(req)
        except GatewayRefused as refused:
            evidence.append(rules.evidence_of(refused.exchange, f"refused: {refused.code}"))
            return Asked("refused", evidence, refusal=f"{refused.code}: {refused.detail}")
        except GatewayUnknown as unknown:
            evidence.append(rules.evidence_of(unknown.exchange, unknown.evidence))
            elapsed = time.monotonic() - started
            if not rules.may_try_again(
                tried, settings.gateway_attempts, elapsed, settings.gateway_timeout_s, budget
            ):
                return Asked("unknown", evidence)
            await asyncio.sleep(rules.backoff_s(tried))
            continue
        evidence.append(rules.evidence_of(created.exchange, f"created: {created.status}"))
        return Asked("accepted", evidence, created=created)
