"""What gateway request asks the gateway for, planned for a whole batch before any call:
which orders still wait for their payment (one query), and each charge's request recorded
and committed (one statement) before the HTTP call, so a callback that beats our own commit
still finds the payment it belongs to, and the sweeper finds it if we die before the answer."""

import json
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from contracts.events.funds import FundsFrozen
from workers.gateway.port import ChargeRequest, Gateway
from workers.gateway.registry import Gateways
from workers.gateway_request import store
from workers.payments import rules
from workers.runtime.errors import PermanentError


def payment_id_for(transaction_id: str, attempt: int = 1) -> str:
    return f"{transaction_id}-p{attempt}"


@dataclass(frozen=True)
class Charge:
    gateway: Gateway
    request: ChargeRequest


# For each event: the charge to ask for; None when the order no longer waits for its payment
# (cancelled by the payment window before we got to it: charge nothing); or why it cannot be.
Planned = Charge | None | PermanentError


async def plan(
    pool: asyncpg.Pool, gateways: Gateways, events: list[FundsFrozen]
) -> dict[UUID, Planned]:
    """The events' charges (each with a gateway part), their requests recorded."""
    waiting = await store.still_to_pay(pool, [e.payload.order_id for e in events])
    planned: dict[UUID, Planned] = {}
    recorded: list[store.NewRequest] = []
    for e in events:
        frozen = e.payload
        if frozen.order_id not in waiting:
            planned[e.event_id] = None
            continue
        try:
            gateway = gateways.for_method(frozen.payment_method)
        except ValueError as exc:  # routes changed since the order was built
            planned[e.event_id] = PermanentError("unsupported_payment_method", str(exc))
            continue
        payment_id = payment_id_for(frozen.transaction_id)
        req = rules.charge_request(payment_id, frozen.order_id, frozen.gateway_part)
        body = json.dumps(
            {
                "payment_id": payment_id,
                "order_id": frozen.order_id,
                "amount": frozen.gateway_part.model_dump(),
                "adapter": gateway.name,
            },
            sort_keys=True,
        )
        recorded.append(
            store.NewRequest(payment_id, frozen, gateway.name, req.idempotency_key, body)
        )
        planned[e.event_id] = Charge(gateway, req)
    await store.record_requests(pool, recorded)
    return planned
