"""What every route shares: API-key authentication, error answers, reading a JSON body, and
Stripe-like idempotency for POSTs (docs/gateway-api.md, "Common rules")."""

import asyncio
import hmac
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

from workers.gateway_simulator import keys
from workers.gateway_simulator.answers import Answer
from workers.gateway_simulator.config import SimConfig
from workers.gateway_simulator.dispatcher import Dispatcher
from workers.gateway_simulator.engine import Engine
from workers.gateway_simulator.writes import Writes

log = structlog.get_logger()

M = TypeVar("M", bound=BaseModel)
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
PROTECTED = ("/v1/", "/v2/")


class Sim:
    """The running simulator's parts, shared by the routes."""

    def __init__(
        self, cfg: SimConfig, engine: Engine, dispatcher: Dispatcher, writes: Writes
    ) -> None:
        self.cfg, self.engine, self.dispatcher, self.writes = cfg, engine, dispatcher, writes
        self.conn = engine.conn
        self.holding: dict[str, float] = {}  # key -> loop time its first answer is released


SIM = web.AppKey("sim", Sim)


def error(status: int, code: str, detail: str) -> web.Response:
    return web.json_response({"error": code, "detail": detail}, status=status)


def respond(answer: Answer, replayed: bool = False) -> web.Response:
    headers = {REPLAYED_HEADER: "true"} if replayed else None
    return web.json_response(answer.body, status=answer.status, headers=headers)


@web.middleware
async def authenticate(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.path.startswith(PROTECTED):
        expected = f"Bearer {request.app[SIM].cfg.api_key}".encode()
        given = request.headers.get("Authorization", "").encode("utf-8", errors="replace")
        if not hmac.compare_digest(expected, given):
            log.warning(
                "unauthorized", method=request.method, path=request.path, remote=request.remote
            )
            return error(401, "unauthorized", "missing or wrong Authorization: Bearer <api key>")
    return await handler(request)


@web.middleware
async def answer_when_durable(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """No answer leaves before what it tells of is committed (writes.py); a failed commit
    is a 500, and the same Idempotency-Key may be tried again."""
    writes = request.app[SIM].writes
    writes.fresh()
    response = await handler(request)
    try:
        await writes.durable()
    except sqlite3.Error:
        return error(500, "internal_error", "try again later")
    return response


def describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(body)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def parse(model: type[M], raw: bytes) -> M | web.Response:
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        code = (
            "invalid_json"
            if any(e["type"] == "json_invalid" for e in exc.errors())
            else ("invalid_request")
        )
        return error(400, code, describe(exc))


async def _replay(sim: Sim, key: str, fingerprint: str) -> web.Response | None:
    stored = keys.get(sim.conn, key)
    if stored is None:
        return None
    if stored.fingerprint != fingerprint:
        log.warning("idempotency_key_reused", key=key)
        return error(
            409, "idempotency_key_reused", "this Idempotency-Key was used with different parameters"
        )
    release = sim.holding.get(key)
    if release is not None:  # the first request is still being answered: wait for it
        await asyncio.sleep(max(0.0, release - asyncio.get_running_loop().time()))
    log.info("idempotent_replay", key=key, status=stored.status)
    return respond(Answer(stored.status, json.loads(stored.body)), replayed=True)


async def idempotent(
    request: web.Request,
    model: type[M],
    act: Callable[[M], Answer],
    before: Callable[[M], Awaitable[Answer | None]] | None = None,
) -> web.Response:
    """Parse, replay or refuse a reused key, else act once and keep the answer."""
    sim = request.app[SIM]
    key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        return error(
            400,
            "invalid_idempotency_key",
            f"{IDEMPOTENCY_HEADER} must be 1..{MAX_KEY_LENGTH} characters",
        )
    body = parse(model, await request.read())
    if isinstance(body, web.Response):
        return body
    fingerprint = f"{request.method} {request.path} {body.model_dump_json()}"
    if (replayed := await _replay(sim, key, fingerprint)) is not None:
        return replayed
    if before is not None:
        runs = sim.writes.runs
        early = await before(body)
        if early is not None:
            return respond(early)
        # The same key may have been answered while we waited; only a write can store it.
        if sim.writes.runs != runs:
            if (replayed := await _replay(sim, key, fingerprint)) is not None:
                return replayed
    # No await from here to the write: the check above still holds.
    answer = sim.writes.run(lambda: _act_once(sim, act, body, key, fingerprint))
    sim.dispatcher.poke()
    if answer.hold_s > 0:
        loop = asyncio.get_running_loop()
        sim.holding[key] = loop.time() + answer.hold_s
        log.warning("answer_withheld", fault="timeout_after_charge", key=key, hold_s=answer.hold_s)
        try:
            await asyncio.sleep(answer.hold_s)
        finally:
            sim.holding.pop(key, None)
    return respond(answer)


def _act_once(sim: Sim, act: Callable[[M], Answer], body: M, key: str, fingerprint: str) -> Answer:
    answer = act(body)
    if answer.remember:
        keys.put(sim.conn, key, fingerprint, answer.status, json.dumps(answer.body), time.time())
    return answer


def json_ok(body: Any) -> web.Response:
    return web.json_response(body)
