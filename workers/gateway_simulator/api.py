"""The HTTP API (aiohttp): create a charge, read its status, health."""

import secrets
from typing import Any

import structlog
from aiohttp import web
from pydantic import ValidationError

from workers.gateway_simulator.callbacks import CallbackSink
from workers.gateway_simulator.dispatcher import CallbackDispatcher
from workers.gateway_simulator.models import Charge, ChargeRequest
from workers.gateway_simulator.payouts import add_payout_routes
from workers.gateway_simulator.rules import decide
from workers.gateway_simulator.store import ChargeStore

log = structlog.get_logger()

DEFAULT_CALLBACK_DELAY_MS = 20
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255  # as Stripe
MAX_BODY_BYTES = 64 * 1024

STORE = web.AppKey("store", ChargeStore)
DISPATCHER = web.AppKey("dispatcher", CallbackDispatcher)


def _error(status: int, code: str, detail: str) -> web.Response:
    return web.json_response({"error": code, "detail": detail}, status=status)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(body)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def _new_gateway_ref() -> str:
    return f"gw_{secrets.token_hex(12)}"


async def create_payment(request: web.Request) -> web.Response:
    key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
    if not key:
        return _error(
            400, "missing_idempotency_key", f"the {IDEMPOTENCY_HEADER} header is required"
        )
    if len(key) > MAX_KEY_LENGTH:
        return _error(
            400,
            "invalid_idempotency_key",
            f"{IDEMPOTENCY_HEADER} must be at most {MAX_KEY_LENGTH} characters",
        )
    raw = await request.read()
    try:
        charge_req = ChargeRequest.model_validate_json(raw)
    except ValidationError as exc:
        if any(err["type"] == "json_invalid" for err in exc.errors()):
            return _error(400, "invalid_json", _describe(exc))
        return _error(400, "invalid_request", _describe(exc))

    # From here on no await: the lookups and inserts below are atomic on the event loop.
    store = request.app[STORE]
    fingerprint = charge_req.fingerprint()
    stored = store.response_for(key)
    if stored is not None:
        if stored.fingerprint != fingerprint:
            log.warning("idempotency_key_reused", key=key, payment_id=charge_req.payment_id)
            return _error(
                409,
                "idempotency_key_reused",
                "this Idempotency-Key was used with different parameters",
            )
        log.info("idempotent_replay", key=key, payment_id=charge_req.payment_id)
        return web.json_response(stored.body, status=200, headers={REPLAYED_HEADER: "true"})

    existing = store.for_payment(charge_req.payment_id)
    if existing is not None:
        # A new key for a payment already charged: never charge twice.
        if not existing.request.same_terms(charge_req):
            log.warning("payment_id_reused", key=key, payment_id=charge_req.payment_id)
            return _error(
                409,
                "payment_id_reused",
                f"payment {charge_req.payment_id} exists with a different order or amount",
            )
        body = existing.created_view()
        store.remember(key, fingerprint, body)
        log.info(
            "charge_exists",
            key=key,
            payment_id=charge_req.payment_id,
            gateway_ref=existing.gateway_ref,
        )
        return web.json_response(body, status=200)

    charge = Charge(
        gateway_ref=_new_gateway_ref(),
        request=charge_req,
        outcome=decide(charge_req.amount.amount),
    )
    store.add(charge)
    body = charge.created_view()
    store.remember(key, fingerprint, body)
    request.app[DISPATCHER].schedule(charge)
    log.info(
        "charge_created",
        gateway_ref=charge.gateway_ref,
        payment_id=charge_req.payment_id,
        order_id=charge_req.order_id,
        amount=str(charge_req.amount),
        outcome=charge.outcome.status,
    )
    return web.json_response(body, status=201)


async def get_payment(request: web.Request) -> web.Response:
    ref = request.match_info["gateway_ref"]
    charge = request.app[STORE].get(ref)
    if charge is None:
        return _error(404, "not_found", f"no payment with gateway_ref {ref!r}")
    return web.json_response(charge.status_view())


async def healthz(request: web.Request) -> web.Response:
    body: dict[str, Any] = {"status": "ok", "pending_callbacks": request.app[DISPATCHER].pending}
    return web.json_response(body)


async def _flush_callbacks(app: web.Application) -> None:
    # Runs after the HTTP server has stopped, so no new charge can arrive meanwhile.
    await app[DISPATCHER].flush()


def build_app(
    secret: str,
    sink: CallbackSink,
    delay_ms: int = DEFAULT_CALLBACK_DELAY_MS,
    *,
    retry_initial_s: float = 0.1,
    retry_max_s: float = 5.0,
    flush_timeout_s: float = 30.0,
) -> web.Application:
    """The simulator's web app. `sink` receives each signed callback (Kafka, or a test list)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[STORE] = ChargeStore()
    app[DISPATCHER] = CallbackDispatcher(
        secret,
        sink,
        delay_ms,
        retry_initial_s=retry_initial_s,
        retry_max_s=retry_max_s,
        flush_timeout_s=flush_timeout_s,
    )
    app.router.add_post("/v1/payments", create_payment)
    app.router.add_get("/v1/payments/{gateway_ref}", get_payment)
    app.router.add_get("/healthz", healthz)
    add_payout_routes(app)
    app.on_cleanup.append(_flush_callbacks)
    return app
