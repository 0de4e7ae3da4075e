-- Refunds of settled orders: to the buyer's wallet, never more than the buyer paid.
-- Every request is kept, refused ones too (for an unknown order: no foreign key).

CREATE TABLE refunds (
    refund_id      text        PRIMARY KEY,
    order_id       text        NOT NULL,
    sub_order_id   text        NOT NULL,
    currency       char(3)     NOT NULL,
    amount         bigint      NOT NULL CHECK (amount > 0),
    reason         text        NOT NULL,
    -- The same refund id with other content is refused.
    request_digest text        NOT NULL,
    status         text        NOT NULL CHECK (status IN ('completed', 'rejected')),
    status_reason  text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_by_sub_order ON refunds (sub_order_id) WHERE status = 'completed';
