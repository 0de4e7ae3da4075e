-- The webhook endpoint (workers/webhook) and callback replay protection (docs/gateway-api.md).

-- One row per callback the webhook accepted: the primary key is what makes a callback id
-- accepted once per provider (a concurrent duplicate waits on the first insert's row, then
-- finds it). signed_at is the Payflow-Timestamp header (Unix seconds).
CREATE TABLE webhook_receipts (
    provider    text        NOT NULL,
    callback_id text        NOT NULL,
    event_id    uuid        NOT NULL UNIQUE,
    payment_id  text        NOT NULL,
    key_id      text        NOT NULL,
    signed_at   bigint      NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (provider, callback_id)
);

-- Every callback the webhook refused, for operators: why, and what came (the body as bytes,
-- exactly as received but cut at PAYFLOW_WEBHOOK_MAX_BODY_BYTES; the headers as sent).
CREATE TABLE webhook_rejections (
    rejection_id     bigserial   PRIMARY KEY,
    provider         text        NOT NULL,
    reason_code      text        NOT NULL,
    detail           text        NOT NULL,
    key_id           text,
    timestamp_header text,
    remote_addr      text,
    body             bytea       NOT NULL,
    received_at      timestamptz NOT NULL
);
CREATE INDEX webhook_rejections_by_time ON webhook_rejections (received_at);
CREATE INDEX webhook_rejections_by_reason ON webhook_rejections (reason_code, received_at);

-- The callback stage looks up earlier decisions of a callback id (replay protection for
-- callbacks published on the topic directly).
CREATE INDEX gateway_callbacks_by_callback ON gateway_callbacks (provider, callback_id);

ALTER TABLE gateway_callbacks DROP CONSTRAINT gateway_callbacks_verdict_check;
ALTER TABLE gateway_callbacks ADD CONSTRAINT gateway_callbacks_verdict_check CHECK (verdict IN (
    'applied', 'duplicate', 'late', 'mismatch', 'forged', 'unmatched', 'malformed', 'replayed',
    'late_success', 'second_charge', 'refund_applied', 'refund_duplicate', 'refund_late'));

-- Which key signed a decided callback, and when (Payflow-Key-Id, Payflow-Timestamp).
ALTER TABLE gateway_callbacks ADD COLUMN key_id text, ADD COLUMN signed_at bigint;
