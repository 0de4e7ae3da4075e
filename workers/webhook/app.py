"""The webhook's routes: POST <path>/{provider}, GET /healthz, GET /metrics.

A callback is answered 200 only once it is durably on the callback topic (acks=all, awaited)
and its receipt is committed (callbacks arriving together are written as one group,
workers/webhook/receipts.py); if either fails the answer is 503 and nothing is kept, so the
gateway retries. The checks run in a fixed order (workers/webhook/checks.py); every refusal is
recorded, logged as one line and counted.
"""

import hashlib
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
import structlog
from aiohttp import web
from aiokafka import AIOKafkaProducer

from contracts import signing
from contracts.codec import encode
from contracts.events.gateway import GatewayCallbackReceived, GatewayCallbackReceivedPayload
from infra.settings import Settings
from workers.gateway.notices import MalformedNotice, read_notice
from workers.runtime import metrics
from workers.runtime.logs import debug_enabled
from workers.webhook import checks, store
from workers.webhook.checks import Rejection, SignedHeaders
from workers.webhook.health import Health, metrics_page
from workers.webhook.receipts import ReceiptWriter, Replayed

log = structlog.get_logger()
# A broker that does not acknowledge in this long is an outage: 503, the gateway retries.
PUBLISH_TIMEOUT_S = 10.0
_CHUNK = 64 * 1024


class Refused(Exception):
    """A callback refused for good; `body` is what was read of it, for the record."""

    def __init__(self, rejection: Rejection, body: bytes = b"") -> None:
        super().__init__(rejection.detail)
        self.rejection, self.body = rejection, body


class Webhook:
    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        clock: Callable[[], float] = time.time,
        publish_timeout_s: float = PUBLISH_TIMEOUT_S,
    ) -> None:
        self.settings, self.pool, self.producer, self.clock = settings, pool, producer, clock
        self.limit = settings.webhook_max_body_bytes
        self.receipts = ReceiptWriter(pool, producer, publish_timeout_s)

    async def callback(self, request: web.Request) -> web.Response:
        provider = request.match_info["provider"]
        received_at = datetime.fromtimestamp(self.clock(), UTC)
        body = b""
        try:
            self._check(checks.provider_known(provider))
            self._check(checks.content_type_ok(request.headers.get("Content-Type", "")))
            body = await self._read_body(request)
            signed = checks.signed_headers(
                request.headers.get(signing.KEY_ID_HEADER),
                request.headers.get(signing.TIMESTAMP_HEADER),
                request.headers.get(signing.SIGNATURE_HEADER),
            )
            if isinstance(signed, Rejection):
                raise Refused(signed)
            event_id, again = await self._accept(provider, body, signed, received_at)
        except Refused as refused:
            seen = refused.body or body or await self._peek(request)
            await self._record(request, provider, refused.rejection, seen, received_at)
            r = refused.rejection
            return web.json_response({"error": r.code, "detail": r.detail}, status=r.status)
        except _Unavailable as exc:
            return self._unavailable(provider, exc)
        if again:  # the gateway's retry of a callback whose 200 it lost: it is on the topic
            metrics.WEBHOOK_CALLBACKS.labels(provider, "duplicate").inc()
            log.info("webhook_duplicate", provider=provider, event_id=str(event_id))
            answer = {"received": True, "event_id": str(event_id), "duplicate": True}
            return web.json_response(answer)
        metrics.WEBHOOK_CALLBACKS.labels(provider, "accepted").inc()
        # Per callback only at DEBUG, as the stages log per event: the counter above counts them.
        if debug_enabled():
            log.debug("webhook_accepted", provider=provider, event_id=str(event_id))
        return web.json_response({"received": True, "event_id": str(event_id)})

    @staticmethod
    def _check(rejection: Rejection | None) -> None:
        if rejection is not None:
            raise Refused(rejection)

    async def _read_body(self, request: web.Request) -> bytes:
        """At most limit bytes are ever buffered: a declared or actual excess is a 413."""
        if request.content_length is not None and request.content_length > self.limit:
            raise Refused(checks.body_too_large(self.limit))
        body = await _read_up_to(request, self.limit + 1)
        if len(body) > self.limit:
            raise Refused(checks.body_too_large(self.limit), body[: self.limit])
        return body

    async def _peek(self, request: web.Request) -> bytes:
        """Up to `limit` bytes of a refused request's body, for the record; the rest is never
        read."""
        try:
            return await _read_up_to(request, self.limit) if request.can_read_body else b""
        except Exception:  # the client went away: the record has no body
            return b""

    async def _accept(
        self, provider: str, body: bytes, signed: SignedHeaders, received_at: datetime
    ) -> tuple[uuid.UUID, bool]:
        """The event id the callback is on the topic as, and whether it was there already (the
        same callback id with the same body, accepted before: published once, answered 200)."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(checks.malformed("body is not UTF-8 text")) from None
        refusal = signing.verify(
            self.settings.signing_keys,
            signed.key_id,
            signed.timestamp,
            text,
            signed.signature,
            now=self.clock(),
            tolerance_s=self.settings.callback_tolerance_s,
        )
        if refusal is not None:
            raise Refused(checks.signature_refused(refusal))
        try:
            notice = read_notice(provider, text)
            event = GatewayCallbackReceived.new(
                notice.payment_id,
                GatewayCallbackReceivedPayload(
                    provider=provider,
                    raw_body=text,
                    key_id=signed.key_id,
                    timestamp=signed.timestamp,
                    signature=signed.signature,
                    received_at=received_at,
                ),
                idempotency_key=f"{provider}:{notice.callback_id}",
            )
        except (MalformedNotice, ValueError) as exc:  # pydantic's ValidationError included
            raise Refused(checks.malformed(str(exc).replace("\n", " "))) from exc
        receipt = store.Receipt(
            provider,
            notice.callback_id,
            event.event_id,
            notice.payment_id,
            signed.key_id,
            signed.timestamp,
            received_at,
            hashlib.sha256(body).hexdigest(),
            encode(event),
        )
        try:
            recorded = await self.receipts.record(receipt)
        except Replayed:
            raise Refused(checks.replayed(provider, notice.callback_id)) from None
        except Exception as exc:  # Kafka or Postgres: nothing was kept, the gateway retries
            raise _Unavailable(exc) from exc
        return recorded.event_id, recorded.again

    async def _record(
        self,
        request: web.Request,
        provider: str,
        r: Rejection,
        body: bytes,
        received_at: datetime,
    ) -> None:
        key_id = request.headers.get(signing.KEY_ID_HEADER)
        timestamp = request.headers.get(signing.TIMESTAMP_HEADER)
        label = checks.metric_provider(provider)
        metrics.WEBHOOK_CALLBACKS.labels(label, r.code).inc()
        log.warning(
            "webhook_rejected",
            provider=provider[:64],
            reason=r.code,
            status=r.status,
            detail=r.detail,
            key_id=(key_id or "")[:64] or None,
            remote=request.remote,
        )
        row = store.RejectedCallback(
            provider[:64],
            r.code,
            r.detail,
            key_id,
            timestamp,
            request.remote,
            body[: self.limit],
            received_at,
        )
        try:
            await store.record_rejection(self.pool, row)
        except Exception as exc:  # the refusal stands; the log line above is the record
            log.error("webhook_rejection_not_recorded", reason=r.code, error=repr(exc)[:300])

    def _unavailable(self, provider: str, exc: "_Unavailable") -> web.Response:
        cause = exc.__cause__ or exc
        metrics.WEBHOOK_CALLBACKS.labels(provider, "unavailable").inc()
        log.error(
            "webhook_unavailable",
            provider=provider,
            error_class=type(cause).__name__,
            error=(str(cause) or repr(cause))[:300],
        )
        return web.json_response(
            {"error": "unavailable", "detail": "callback not stored; retry later"}, status=503
        )


async def _read_up_to(request: web.Request, size: int) -> bytes:
    chunks: list[bytes] = []
    read = 0
    while read < size:
        chunk = await request.content.read(min(_CHUNK, size - read))
        if not chunk:
            break
        chunks.append(chunk)
        read += len(chunk)
    return b"".join(chunks)


class _Unavailable(Exception):
    """Kafka or Postgres failed while accepting: answered 503."""


def build_app(webhook: Webhook, path: str) -> web.Application:
    # client_max_size bounds aiohttp's own buffering too; the handler streams with a limit.
    app = web.Application(client_max_size=webhook.limit + 1)
    base = "/" + path.strip("/") if path.strip("/") else ""
    app.add_routes(
        [
            web.post(base + "/{provider}", webhook.callback),
            web.get("/healthz", Health(webhook).healthz),
            web.get("/metrics", metrics_page),
        ]
    )
    return app
