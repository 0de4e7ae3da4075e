"""Gateway simulator: a separate HTTP process that behaves like a third-party payment gateway.

HTTP API (see `api.py`):
  POST /v1/payments               create a charge; `Idempotency-Key` header required
  GET  /v1/payments/{gateway_ref} the charge's current status and amount
  GET  /healthz                   liveness

Idempotency follows Stripe: the same key with the same parameters replays the first response
(200, `Idempotent-Replayed: true`) without a second charge or callback; the same key with
different parameters is refused (409 `idempotency_key_reused`). A second key for an existing
payment_id returns the existing charge (200) instead of charging again, or 409
`payment_id_reused` if the amount or order differ.

Outcome rules, chosen by the amount's minor units so tests and demos can pick them:
  amount % 100 == 13  -> callback "failed", failure_reason "card_declined"
  amount % 100 == 42  -> "succeeded", but the callback is delivered twice (same callback_id)
  amount % 100 == 99  -> "succeeded", but the callback reports amount + 1 (must go to review)
  otherwise           -> "succeeded"

Each new charge gets a signed callback (HMAC-SHA256 of the raw body with the gateway secret)
after a delay (default 20 ms, env PAYFLOW_SIM_CALLBACK_DELAY_MS), wrapped in a
`GatewayCallbackReceived` event and published to the gateway callbacks topic.
"""
