"""The one way payflow calls a gateway over HTTP (docs/gateway-api.md, "Common rules").

Every call is authenticated with our API key, every POST carries our idempotency key, and
every exchange is kept as evidence. What an answer means is decided here, once:

- a 2xx (or a status the caller expects, such as a declined payout's 402) is an answer;
- a 4xx is a definite "no": `GatewayRefused` with the gateway's error code;
- a timeout, a lost connection, a 5xx, a 408/429 or a 2xx we cannot read: `GatewayUnknown`, the
  request may have been done. Nothing is retried here: the caller retries with the same key.

The API key never appears in evidence or logs.
"""

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from pydantic import ValidationError

from infra.settings import Settings
from workers.gateway.port import Exchange, GatewayRefused, GatewayUnknown

T = TypeVar("T")
EVIDENCE_CHARS = 2_000  # a response kept as evidence is cut to this length


@dataclass(frozen=True)
class Reply:
    status: int
    text: str
    exchange: Exchange

    def read(self, parse: Callable[[Any], T]) -> T:
        """`parse` applied to the JSON body; a body that is not what the document says is an
        unknown outcome (the gateway may have done it; we cannot tell what it answered)."""
        return self.read_text(lambda text: parse(json.loads(text)))

    def read_text(self, parse: Callable[[str], T]) -> T:
        try:
            return parse(self.text)
        except (ValueError, TypeError, KeyError, AttributeError, ValidationError) as exc:
            raise _unreadable(self.exchange, exc) from exc


def _unreadable(exchange: Exchange, exc: BaseException) -> GatewayUnknown:
    return GatewayUnknown(
        f"{exchange.request.splitlines()[0]}: answered {exchange.status} with a body we "
        f"cannot read ({type(exc).__name__}: {str(exc)[:200]}): {exchange.response[:500]}",
        exchange,
    )


def gateway_session() -> aiohttp.ClientSession:
    """The process's session for gateway calls. No cookie jar: a gateway API keeps no session
    in cookies, and parsing and matching them cost about a tenth of each call's CPU."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())


class GatewayHttp:
    """Shared by the adapters; one aiohttp session per process (`gateway_session`)."""

    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        self._base = settings.gateway_url.rstrip("/")
        self._auth = {"Authorization": f"Bearer {settings.gateway_api_key.get_secret_value()}"}
        self._timeout = aiohttp.ClientTimeout(total=settings.gateway_timeout_s)
        self._session = session

    async def post(
        self,
        path: str,
        body: Mapping[str, Any],
        idempotency_key: str,
        answers: Collection[int] = (),
    ) -> Reply:
        raw = json.dumps(body, sort_keys=True, separators=(",", ":"))
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
        sent = f"POST {path}\nIdempotency-Key: {idempotency_key}\n\n{raw}"
        return await self._call("POST", path, sent, answers, data=raw, headers=headers)

    async def get(
        self, path: str, params: Mapping[str, str] | None = None, answers: Collection[int] = ()
    ) -> Reply:
        query = "&".join(f"{k}={v}" for k, v in (params or {}).items())
        sent = f"GET {path}{'?' + query if query else ''}"
        return await self._call("GET", path, sent, answers, params=dict(params or {}))

    async def _call(
        self, method: str, path: str, sent: str, answers: Collection[int], **kwargs: Any
    ) -> Reply:
        headers = {**self._auth, **kwargs.pop("headers", {})}
        try:
            async with self._session.request(
                method, self._base + path, headers=headers, timeout=self._timeout, **kwargs
            ) as resp:
                status = resp.status
                text = (await resp.read()).decode("utf-8", errors="replace")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            seen = f"{type(exc).__name__}: {str(exc)[:200]}" if str(exc) else type(exc).__name__
            raise GatewayUnknown(
                f"{sent.splitlines()[0]}: no answer ({seen}); outcome unknown",
                Exchange(request=sent, status=None, response=seen),
            ) from exc
        exchange = Exchange(request=sent, status=status, response=text[:EVIDENCE_CHARS])
        if 200 <= status < 300 or status in answers:
            return Reply(status, text, exchange)
        if status >= 500 or status in (408, 429):
            raise GatewayUnknown(
                f"{sent.splitlines()[0]}: answered {status}; outcome unknown: {text[:500]}",
                exchange,
            )
        code, detail = _error_body(status, text)
        raise GatewayRefused(status, code, detail, exchange)


def _error_body(status: int, text: str) -> tuple[str, str]:
    """`{"error": code, "detail": sentence}`; a 4xx without one is still a refusal."""
    try:
        data = json.loads(text)
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            return data["error"], str(data.get("detail") or "")
    except ValueError:
        pass
    return f"http_{status}", text[:500]
