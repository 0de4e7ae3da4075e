"""The webhook endpoint gateways post callbacks to (`payflow run webhook`).

`POST <path of PAYFLOW_WEBHOOK_URL>/<provider>`, checked in this order; every refusal is
answered `{"error": <code>, "detail": <sentence>}`, recorded in `webhook_rejections`, logged
(`webhook_rejected`) and counted (`payflow_webhook_callbacks_total{provider,outcome}`):

| answer | code | when |
|--------|------|------|
| 404 | unknown_provider | provider not in workers.gateway.notices.PROVIDERS (metric label "unknown") |
| 415 | unsupported_media_type | Content-Type is not application/json (parameters allowed) |
| 413 | body_too_large | more than PAYFLOW_WEBHOOK_MAX_BODY_BYTES (declared or sent) |
| 400 | missing_headers | Payflow-Key-Id, -Timestamp or -Signature absent or empty |
| 400 | malformed_headers | key id not an identifier, timestamp not Unix seconds, signature not v1=<64 hex> |
| 400 | malformed_notice | body not UTF-8 text (no signature can hold), or, once the signature verifies, not a notice the provider's reader accepts |
| 401 | unknown_key_id, bad_signature, stale_timestamp, future_timestamp | contracts.signing.verify |
| 401 | replayed_callback | (provider, callback_id) was accepted before with another body |
| 200 | duplicate: true   | the same callback (id and body) was accepted before: on the topic once |
| 503 | unavailable | Kafka or Postgres failed: nothing kept, the gateway retries (not a rejection) |
| 200 | `{"received": true, "event_id": ...}` | on the callback topic (acks=all) and receipt committed |

A body is parsed only after its signature verified, so an unsigned request learns nothing
about our parser. Gateways treat a 4xx other than 408/429 as final (docs/gateway-api.md).

Receipts and rejections older than PAYFLOW_WEBHOOK_RETENTION_DAYS are pruned by the server in
small batches (retention.py); a receipt only once its callback's timestamp is stale anyway.
"""
