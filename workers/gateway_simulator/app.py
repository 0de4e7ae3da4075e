"""The simulator's web app: routes, authentication, and the dispatcher running beside it."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
from aiohttp import web

from workers.gateway_simulator import db, routes_house, routes_v1, routes_v2, statement
from workers.gateway_simulator.config import SimConfig
from workers.gateway_simulator.dispatcher import Dispatcher
from workers.gateway_simulator.engine import Engine
from workers.gateway_simulator.http_common import SIM, Sim, answer_when_durable, authenticate
from workers.gateway_simulator.writes import Writes

MAX_BODY_BYTES = 64 * 1024


def build_app(cfg: SimConfig) -> web.Application:
    conn = db.connect(cfg.db_path)
    app = web.Application(
        client_max_size=MAX_BODY_BYTES, middlewares=[authenticate, answer_when_durable]
    )
    writes = Writes(conn)
    app[SIM] = Sim(cfg, Engine(conn, cfg), Dispatcher(conn, cfg, writes), writes)
    routes_v1.add_routes(app)
    routes_v2.add_routes(app)
    routes_house.add_routes(app)
    app.cleanup_ctx.append(_dispatching)
    return app


async def _dispatching(app: web.Application) -> AsyncIterator[None]:
    sim = app[SIM]
    # No cookie jar: webhooks answer callbacks without cookies, and keeping a jar costs CPU
    # on every delivery.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        task = asyncio.create_task(sim.dispatcher.run(session), name="gateway-dispatcher")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    sim.writes.flush()
    day = datetime.now(UTC).date().isoformat()
    statement.write(sim.cfg.sim_dir, day, statement.render(statement.lines(sim.conn, day)))
    sim.conn.close()
