"""The wallet's calls through the gateway port, each recorded before it is sent: a top-up's
charge and a withdrawal's payout. Keys are derived from our ids, so a retry never charges or
pays twice. A top-up is charged like an order's payment (workers/payments): bounded attempts
with the same key, then `unknown` with its evidence, resolved later by the sweeper. A payout's
unknown outcome (GatewayUnknown) is still raised to the runtime, which retries the batch."""

import json

import asyncpg

from contracts.events.wallet import TopUpRequestedPayload, WithdrawalRequestedPayload
from infra.settings import Settings
from workers.gateway.port import Exchange, Gateway, GatewayRefused, Payout, PayoutRequest
from workers.payments import rules as payment_rules
from workers.payments.calls import ask
from workers.payments.rules import Asked
from workers.wallet import store


def top_up_payment_id(operation_id: str) -> str:
    return f"{operation_id}-p1"


def payout_key(operation_id: str) -> str:
    # Kept as first shipped (not the document's payflow:payout:<id>): a withdrawal in flight
    # across an upgrade must reach the gateway with the key it was first sent with.
    return f"payflow-payout:{operation_id}"


async def charge_top_up(
    pool: asyncpg.Pool, gateway: Gateway, req: TopUpRequestedPayload, settings: Settings
) -> Asked | None:
    """None when the operation is already past `requested` (a redelivery)."""
    if await store.record_operation(pool, "top_up", req) != "requested":
        return None
    payment_id = top_up_payment_id(req.operation_id)
    # Built as an order's charge is: the sweeper re-sends it the same way, from the record.
    charge = payment_rules.charge_request(payment_id, req.operation_id, req.amount)
    asked = {"payment_id": payment_id, "order_id": req.operation_id, **req.amount.model_dump()}
    await store.record_top_up_charge(
        pool, payment_id, req, charge.idempotency_key, json.dumps(asked), gateway.name
    )
    return await ask(gateway, charge, settings)


async def pay_out(pool: asyncpg.Pool, gateway: Gateway, w: WithdrawalRequestedPayload) -> Payout:
    req = PayoutRequest(
        payout_id=w.operation_id,
        amount=w.amount,
        destination=w.destination,
        idempotency_key=payout_key(w.operation_id),
    )
    asked = {
        "payout_id": req.payout_id,
        "amount": req.amount.model_dump(),
        "destination": req.destination,
    }
    await store.record_payout_request(pool, req.payout_id, req.idempotency_key, json.dumps(asked))
    return await gateway.payout(req)


def evidence(refused: GatewayRefused) -> Exchange:
    return refused.exchange or Exchange(request="", status=refused.status, response=str(refused))
