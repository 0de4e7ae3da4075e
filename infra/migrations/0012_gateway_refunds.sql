-- Money the gateway holds for us that we did not sell for, and every charge we know of.

-- Every charge the gateway told us about (callback or status query): what the audit holds
-- against the gateway's statement, and how "charged more than once" is seen. The first
-- success of a payment is here too, beside any extra one.
CREATE TABLE gateway_charges (
    gateway_ref   text        PRIMARY KEY,
    payment_id    text        NOT NULL REFERENCES payment_requests,
    amount        bigint      NOT NULL CHECK (amount > 0),
    currency      char(3)     NOT NULL,
    status        text        NOT NULL CHECK (status IN ('succeeded', 'failed')),
    source        text        NOT NULL CHECK (source IN ('callback', 'sync')),
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gateway_charges_by_payment ON gateway_charges (payment_id);

-- Refunds sent through the gateway. kind 'late_payment': a success after the order was
-- not sold, or a second charge (reason says which); refunds of settled orders (kind
-- 'order_refund') come later. refund_id is ours and deterministic ('late:<gateway_ref>'),
-- so one charge is refunded at most once.
CREATE TABLE gateway_refunds (
    refund_id     text        PRIMARY KEY,
    kind          text        NOT NULL CHECK (kind IN ('late_payment', 'order_refund')),
    payment_id    text        NOT NULL REFERENCES payment_requests,
    gateway_ref   text        NOT NULL,
    adapter       text        NOT NULL,
    amount        bigint      NOT NULL CHECK (amount > 0),
    currency      char(3)     NOT NULL,
    reason        text        NOT NULL,
    status        text        NOT NULL CHECK (status IN (
                      'requested', 'pending', 'unknown', 'succeeded', 'failed',
                      'held_for_review')),
    refund_ref    text,
    attempts      integer     NOT NULL DEFAULT 0,
    next_try_at   timestamptz NOT NULL DEFAULT now(),
    -- What we saw at each step (gateway answers, errors), newest last.
    evidence      jsonb       NOT NULL DEFAULT '[]'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX gateway_refunds_one_late_per_charge ON gateway_refunds (gateway_ref)
    WHERE kind = 'late_payment';
CREATE INDEX gateway_refunds_due ON gateway_refunds (status, next_try_at);

ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_kind_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_kind_check CHECK (kind IN (
    'purchase', 'top_up', 'withdrawal', 'refund', 'correction', 'late_payment',
    'late_payment_refund'));

-- Money owed back to buyers for charges we did not sell for (a platform liability).
ALTER TABLE accounts DROP CONSTRAINT accounts_purpose_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_purpose_check CHECK (purpose IN (
    'wallet', 'payable', 'fee_income', 'gateway_clearing', 'order_clearing',
    'coupon_subsidy', 'funding', 'payouts', 'late_payments_payable'));
