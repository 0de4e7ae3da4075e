-- Upstream idempotency of order.submitted (docs/contracts.md, "Idempotency keys").

-- Which submission an order id was first answered for, so a conflict can name it.
-- NULL for orders and rejections recorded before this migration.
ALTER TABLE orders ADD COLUMN submitted_event_id uuid;
ALTER TABLE order_rejections ADD COLUMN submitted_event_id uuid;

-- The first submission under each envelope idempotency_key owns it: the primary key is what
-- makes two concurrent submissions under one key end with one order (insert, then act).
-- request_digest covers the payload without order_id, so a retry under a new order id is
-- recognised. Kept PAYFLOW_IDEMPOTENCY_RETENTION_H hours, then pruned in small batches.
CREATE TABLE order_idempotency_keys (
    idempotency_key text        PRIMARY KEY,
    order_id        text        NOT NULL,
    request_digest  text        NOT NULL,
    event_id        uuid        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_idempotency_keys_by_age ON order_idempotency_keys (created_at);

-- Order ids answered with order.duplicate (same key, same request as original_order_id):
-- never built, held or charged; bound to their content like any other order id.
-- request_digest is of the whole payload, like orders.request_digest.
CREATE TABLE order_duplicates (
    order_id          text        PRIMARY KEY,
    original_order_id text        NOT NULL,
    idempotency_key   text        NOT NULL,
    request_digest    text        NOT NULL,
    event_id          uuid        NOT NULL,
    answered_at       timestamptz NOT NULL DEFAULT now()
);

-- Submissions refused because an earlier one owns their key or order id, for operators.
-- Not in order_rejections: that table is keyed by order id and means "this order was
-- rejected", while an order_id_conflict leaves the existing order untouched.
-- The two digests are of the same kind within a row: of the payload without order_id for
-- idempotency_key_conflict, of the whole payload for order_id_conflict.
CREATE TABLE order_submission_conflicts (
    conflict_id       bigserial   PRIMARY KEY,
    reason_code       text        NOT NULL CHECK (reason_code IN (
                          'idempotency_key_conflict', 'order_id_conflict')),
    idempotency_key   text        NOT NULL,
    order_id          text        NOT NULL,
    event_id          uuid        NOT NULL UNIQUE,
    request_digest    text        NOT NULL,
    existing_order_id text        NOT NULL,
    existing_event_id uuid,
    existing_digest   text        NOT NULL,
    detected_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_submission_conflicts_by_order ON order_submission_conflicts (order_id);
CREATE INDEX order_submission_conflicts_by_key ON order_submission_conflicts (idempotency_key);
