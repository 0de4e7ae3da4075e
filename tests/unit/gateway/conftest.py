"""A fake gateway for the adapters' translation tests: a real aiohttp server on loopback that
answers each route with what the test told it to (shaped like docs/gateway-api.md) and keeps
every request it received."""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from infra.settings import Settings
from workers.gateway.registry import Gateways

API_KEY = "unit-test-api-key"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Canned:
    status: int
    body: Any  # dict/list -> JSON, str -> as is
    content_type: str = "application/json"
    delay_s: float = 0.0


@dataclass
class FakeGateway:
    url: str = ""
    answers: dict[tuple[str, str], Canned] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def answer(self, method: str, path: str, status: int, body: Any, **kw: Any) -> None:
        self.answers[(method, path)] = Canned(status, body, **kw)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.text()
        self.seen.append(
            Seen(
                request.method,
                request.path,
                dict(request.query),
                dict(request.headers),
                json.loads(raw) if raw else None,
            )
        )
        canned = self.answers.get((request.method, request.path))
        if canned is None:
            return web.json_response({"error": "not_found", "detail": "no such route"}, status=404)
        if canned.delay_s:
            await asyncio.sleep(canned.delay_s)
        text = canned.body if isinstance(canned.body, str) else json.dumps(canned.body)
        return web.Response(status=canned.status, text=text, content_type=canned.content_type)


@pytest.fixture
async def fake() -> AsyncIterator[FakeGateway]:
    gateway = FakeGateway()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", gateway.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    gateway.url = str(server.make_url("")).rstrip("/")
    yield gateway
    await server.close()


def settings_for(url: str, **overrides: Any) -> Settings:
    return Settings(
        gateway_url=url,
        gateway_api_key=SecretStr(API_KEY),
        gateway_timeout_s=overrides.pop("gateway_timeout_s", 2.0),
        **overrides,
    )


@pytest.fixture
async def gateways(fake: FakeGateway) -> AsyncIterator[Gateways]:
    async with aiohttp.ClientSession() as session:
        yield Gateways(settings_for(fake.url), session)
