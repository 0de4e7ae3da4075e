"""The direct charge API (`/v1`, Stripe-like): payments, voids and refunds."""

import asyncio

import structlog
from aiohttp import web

from workers.gateway_simulator import records, views
from workers.gateway_simulator.answers import Answer, error
from workers.gateway_simulator.http_common import SIM, Sim, idempotent
from workers.gateway_simulator.http_common import error as error_response
from workers.gateway_simulator.requests import ChargeBody, Empty, RefundBody

log = structlog.get_logger()


async def create_faults(sim: Sim, payment_id: str) -> Answer | None:
    """The faults that strike before a create is processed: latency, then a 503."""
    faults, t = sim.cfg.faults, sim.cfg.timings
    if faults.hits("latency", payment_id):
        await asyncio.sleep(t.latency_ms / 1000)
    if faults.hits("error_before_charge", payment_id):
        log.warning("create_failed", fault="error_before_charge", payment_id=payment_id)
        return error(503, "service_unavailable", "the gateway is temporarily unavailable")
    return None


async def create_payment(request: web.Request) -> web.Response:
    sim = request.app[SIM]

    async def before(body: ChargeBody) -> Answer | None:
        return await create_faults(sim, body.payment_id)

    return await idempotent(
        request,
        ChargeBody,
        lambda b: sim.engine.create_charge(
            "direct",
            b.payment_id,
            b.amount.amount,
            b.amount.currency,
            order_id=b.order_id,
            subject=b.description,
        ),
        before,
    )


async def get_payment(request: web.Request) -> web.Response:
    ref = request.match_info["gateway_ref"]
    row = records.charge(request.app[SIM].conn, "direct", ref)
    if row is None:
        return error_response(404, "not_found", f"no payment with gateway_ref {ref!r}")
    return web.json_response(views.charge(row))


async def list_payments(request: web.Request) -> web.Response:
    conn = request.app[SIM].conn
    payment_id = request.query.get("payment_id")
    rows = (
        records.charges_for(conn, "direct", payment_id)
        if payment_id is not None
        else records.all_charges(conn, "direct")
    )
    return web.json_response({"data": [views.charge(r) for r in rows]})


async def void_payment(request: web.Request) -> web.Response:
    sim, ref = request.app[SIM], request.match_info["gateway_ref"]
    return await idempotent(request, Empty, lambda _b: sim.engine.void("direct", ref))


async def create_refund(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    return await idempotent(
        request,
        RefundBody,
        lambda b: sim.engine.create_refund(
            "direct", b.refund_id, b.gateway_ref, b.amount.amount, b.amount.currency, b.reason
        ),
    )


async def list_refunds(request: web.Request) -> web.Response:
    refund_id = request.query.get("refund_id", "")
    row = records.refund(request.app[SIM].conn, "direct", refund_id)
    return web.json_response({"data": [views.refund(row)] if row else []})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/payments", create_payment)
    app.router.add_get("/v1/payments", list_payments)
    app.router.add_get("/v1/payments/{gateway_ref}", get_payment)
    app.router.add_post("/v1/payments/{gateway_ref}/void", void_payment)
    app.router.add_post("/v1/refunds", create_refund)
    app.router.add_get("/v1/refunds", list_refunds)
