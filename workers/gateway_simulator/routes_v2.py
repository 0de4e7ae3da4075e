"""The redirect / QR checkout API (`/v2`, Alipay-like), and the buyer's pay page."""

from aiohttp import web

from workers.gateway_simulator import records, views
from workers.gateway_simulator.answers import Answer
from workers.gateway_simulator.engine import Engine
from workers.gateway_simulator.http_common import SIM, idempotent
from workers.gateway_simulator.http_common import error as error_response
from workers.gateway_simulator.requests import CheckoutBody, Empty, TradeRefundBody
from workers.gateway_simulator.routes_v1 import create_faults


def _checkout(engine: Engine, b: CheckoutBody) -> Answer:
    return engine.create_charge(
        "redirect", b.out_trade_no, b.total_amount, b.currency, subject=b.subject
    )


async def checkout(request: web.Request) -> web.Response:
    sim = request.app[SIM]

    async def before(body: CheckoutBody) -> Answer | None:
        return await create_faults(sim, body.out_trade_no)

    return await idempotent(request, CheckoutBody, lambda b: _checkout(sim.engine, b), before)


async def list_trades(request: web.Request) -> web.Response:
    conn = request.app[SIM].conn
    out_trade_no = request.query.get("out_trade_no")
    rows = (
        records.charges_for(conn, "redirect", out_trade_no)
        if out_trade_no is not None
        else records.all_charges(conn, "redirect")
    )
    return web.json_response({"trades": [views.trade(r) for r in rows]})


async def close_trade(request: web.Request) -> web.Response:
    sim, trade_no = request.app[SIM], request.match_info["trade_no"]
    return await idempotent(request, Empty, lambda _b: sim.engine.void("redirect", trade_no))


async def create_refund(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    return await idempotent(
        request,
        TradeRefundBody,
        lambda b: sim.engine.create_refund(
            "redirect", b.out_request_no, b.trade_no, b.refund_amount, b.currency, b.reason
        ),
    )


async def list_refunds(request: web.Request) -> web.Response:
    out_request_no = request.query.get("out_request_no", "")
    row = records.refund(request.app[SIM].conn, "redirect", out_request_no)
    return web.json_response({"refunds": [views.trade_refund(row)] if row else []})


async def pay(request: web.Request) -> web.Response:
    """The buyer opens pay_url (or scans the QR code): the trade is paid at once."""
    sim, trade_no = request.app[SIM], request.match_info["trade_no"]
    row = records.charge(sim.conn, "redirect", trade_no)
    if row is None:
        return error_response(404, "not_found", f"no trade {trade_no!r}")
    sim.writes.run(lambda: records.pay_now(sim.conn, trade_no, 0.0))
    sim.dispatcher.poke()
    return web.json_response({"trade_no": trade_no, "paying": row["status"] == "pending"})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v2/checkout", checkout)
    app.router.add_get("/v2/trades", list_trades)
    app.router.add_post("/v2/trades/{trade_no}/close", close_trade)
    app.router.add_post("/v2/refunds", create_refund)
    app.router.add_get("/v2/refunds", list_refunds)
    app.router.add_get("/pay/{trade_no}", pay)
