"""Support for the gateway simulator tests (no tests here): the simulator as a real process, and a small webhook receiver inside the test that
verifies every callback's signature with contracts.signing.verify (the test's own webhook)."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from contracts.signing import (
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    parse_signature_header,
    verify,
)
from infra.ports import free_port
from infra.settings import Settings
from tests.support.pipeline import eventually
from workers.gateway.notices import read_notice
from workers.gateway.port import Notice
from workers.ops.processes import Children


@dataclass(frozen=True)
class Delivery:
    provider: str
    body: str
    verified: bool
    notice: Notice
    at: float


@dataclass
class Receiver:
    settings: Settings
    port: int = field(default_factory=free_port)
    deliveries: list[Delivery] = field(default_factory=list)
    answer: int | None = None  # force this status (e.g. 503); None: 200, or 401 if unverified
    attempts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.answer is not None:
            return web.json_response({"error": "busy"}, status=self.answer)
        raw = (await request.read()).decode()
        signature = parse_signature_header(request.headers.get(SIGNATURE_HEADER, "")) or ""
        refusal = verify(
            self.settings.signing_keys,
            request.headers.get(KEY_ID_HEADER, ""),
            int(request.headers.get(TIMESTAMP_HEADER, "0")),
            raw,
            signature,
            now=time.time(),
            tolerance_s=300,
        )
        provider = request.match_info["provider"]
        notice = read_notice(provider, raw)
        self.deliveries.append(Delivery(provider, raw, refusal is None, notice, time.monotonic()))
        if refusal is not None:
            return web.json_response({"error": refusal.code}, status=401)
        return web.json_response({"ok": True})

    def for_payment(self, payment_id: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.notice.payment_id == payment_id]


@asynccontextmanager
async def receiver(settings: Settings) -> AsyncIterator[Receiver]:
    rec = Receiver(settings)
    app = web.Application()
    app.router.add_post("/hooks/{provider}", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", rec.port).start()
    try:
        yield rec
    finally:
        await runner.cleanup()


@dataclass
class Gateway:
    settings: Settings
    http: aiohttp.ClientSession

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.gateway_api_key.get_secret_value()}"}

    async def post(
        self, path: str, body: Any, key: str, timeout_s: float = 30.0
    ) -> tuple[int, Any, Any]:
        async with self.http.post(
            self.settings.gateway_url + path,
            json=body,
            headers={**self.auth, "Idempotency-Key": key},
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as resp:
            return resp.status, await resp.json(), resp.headers

    async def get(self, path: str, auth: bool = True) -> tuple[int, Any]:
        async with self.http.get(
            self.settings.gateway_url + path, headers=self.auth if auth else {}
        ) as resp:
            return resp.status, await resp.json(content_type=None)

    async def text(self, path: str) -> str:
        async with self.http.get(self.settings.gateway_url + path, headers=self.auth) as resp:
            assert resp.status == 200
            return await resp.text()

    async def charges(self, payment_id: str) -> list[dict[str, Any]]:
        status, body = await self.get(f"/v1/payments?payment_id={payment_id}")
        assert status == 200, body
        return list(body["data"])

    async def up(self) -> bool:
        try:
            status, body = await self.get("/healthz", auth=False)
            return status == 200 and "pending_callbacks" in body
        except (aiohttp.ClientError, TimeoutError):
            return False


def start(children: Children, env: dict[str, str]) -> None:
    children.start("test-gateway-simulator-h", "run", "gateway-simulator", env=env)


def sim_env(rec: Receiver, db: Path, **extra: str) -> dict[str, str]:
    return {
        "PAYFLOW_WEBHOOK_URL": rec.url,
        "PAYFLOW_SIM_DB": str(db),
        "PAYFLOW_SIM_CALLBACK_DELAY_MS": "50",
        "PAYFLOW_SIM_RETRY_INITIAL_MS": "100",
        "PAYFLOW_SIM_RETRY_MAX_MS": "500",
        "PAYFLOW_DEMO": "1",
        **extra,
    }


async def wait_up(gw: Gateway) -> None:
    await eventually(gw.up, 30, "simulator answering /healthz")


async def settle(seconds: float) -> None:
    await asyncio.sleep(seconds)
