"""What both products share: payouts, the daily statement, and /healthz."""

import re

from aiohttp import web

from workers.gateway_simulator import statement
from workers.gateway_simulator.http_common import SIM, idempotent
from workers.gateway_simulator.http_common import error as error_response
from workers.gateway_simulator.requests import PayoutBody

DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


async def create_payout(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    return await idempotent(
        request,
        PayoutBody,
        lambda b: sim.engine.payout(b.payout_id, b.amount.amount, b.amount.currency, b.destination),
    )


async def get_statement(request: web.Request) -> web.Response:
    sim, day = request.app[SIM], request.match_info["day"]
    if not DAY.fullmatch(day):
        return error_response(400, "invalid_day", f"{day!r} is not YYYY-MM-DD")
    text = statement.render(statement.lines(sim.conn, day))
    statement.write(sim.cfg.sim_dir, day, text)
    return web.Response(text=text, content_type="text/csv")


async def healthz(request: web.Request) -> web.Response:
    # `pending_callbacks` is how workers/ops/processes.py recognises the simulator.
    sim = request.app[SIM]
    return web.json_response(
        {
            "status": "ok",
            "service": "gateway-simulator",
            "pending_callbacks": sim.dispatcher.pending,
            "faults": sim.cfg.faults.describe(),
            "seed": sim.cfg.faults.seed,
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/payouts", create_payout)
    app.router.add_get("/v1/statements/{day}", get_statement)
    app.router.add_get("/healthz", healthz)
