-- Unknown gateway outcomes are resolved, never waited on forever (issue 7, section 2).

-- What we saw at every exchange with the gateway (newest last), how many status queries the
-- sweeper made, and when it asks next. A redirect/QR payment keeps where the buyer pays.
ALTER TABLE payment_requests
    ADD COLUMN evidence      jsonb       NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN checks        integer     NOT NULL DEFAULT 0 CHECK (checks >= 0),
    ADD COLUMN next_check_at timestamptz,
    ADD COLUMN pay_url       text,
    ADD COLUMN qr_payload    text;

-- 'expired': the payment window closed before it was paid; 'voided': and the gateway
-- confirmed it cancelled the charge.
ALTER TABLE payment_requests DROP CONSTRAINT payment_requests_status_check;
ALTER TABLE payment_requests ADD CONSTRAINT payment_requests_status_check CHECK (status IN (
    'requesting', 'pending', 'succeeded', 'failed', 'unknown', 'manual_review', 'expired',
    'voided'));

CREATE INDEX payment_requests_due ON payment_requests (next_check_at)
    WHERE status IN ('requesting', 'pending', 'unknown');

-- The order must be paid by then or it is cancelled (TCC Cancel). NULL: created_at plus
-- PAYFLOW_PAYMENT_WINDOW_S.
ALTER TABLE orders ADD COLUMN pay_by timestamptz;
CREATE INDEX orders_open_by_age ON orders (created_at)
    WHERE state IN ('funds_frozen', 'payment_requested');

-- One row per unit of sweeper work ('sync:<payment_id>:<check_no>', 'window:<order_id>'):
-- the primary key is what stops two sweeper replicas doing the same work.
CREATE TABLE sweeper_tasks (
    task_key    text        PRIMARY KEY,
    payment_id  text,
    order_id    text,
    result      text,
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
