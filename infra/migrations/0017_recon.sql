-- Reconciliation against the gateway's daily statement (issue 8, docs/reconciliation.md).

-- One row per `payflow recon` run: where the statement came from and what it found.
CREATE TABLE recon_runs (
    run_id      bigserial   PRIMARY KEY,
    day         date        NOT NULL,
    source      text        NOT NULL,
    matched     integer     NOT NULL CHECK (matched >= 0),
    pending     integer     NOT NULL CHECK (pending >= 0),
    exceptions  integer     NOT NULL CHECK (exceptions >= 0),
    report      jsonb       NOT NULL,
    ran_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recon_runs_by_day ON recon_runs (day, run_id);

-- The latest classification of every statement line and every record of ours for a day:
-- 'line:<kind>:<gateway_ref>[#n]' (a statement line, with the record it matched, if any) or
-- 'ours:<kind>:<reference>:<gateway_ref>' (a record of ours the statement does not have).
-- resolution: what an operator did about an exception (`payflow recon resolve`).
CREATE TABLE recon_lines (
    day         date        NOT NULL,
    line_key    text        NOT NULL,
    category    text        NOT NULL CHECK (category IN (
                    'matched', 'pending', 'missing_ours', 'missing_gateway', 'amount_mismatch',
                    'status_mismatch', 'currency_mismatch', 'duplicate')),
    kind        text        NOT NULL CHECK (kind IN ('charge', 'refund', 'payout')),
    gateway_ref text,
    reference   text        NOT NULL,
    our_key     text,
    statement   jsonb,
    ours        jsonb,
    detail      text        NOT NULL DEFAULT '',
    case_id     bigint      REFERENCES review_cases,
    run_id      bigint      NOT NULL REFERENCES recon_runs,
    resolution  text        CHECK (resolution IN ('refund', 'create', 'relink', 'explain')),
    resolved_category text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, line_key)
);
CREATE INDEX recon_lines_by_case ON recon_lines (case_id);
CREATE INDEX recon_lines_by_ref ON recon_lines (gateway_ref);
CREATE INDEX recon_lines_by_our_key ON recon_lines (our_key) WHERE category = 'matched';

-- An operator's word that a statement line belongs to another record of ours (relink).
CREATE TABLE recon_links (
    day         date        NOT NULL,
    kind        text        NOT NULL,
    gateway_ref text        NOT NULL,
    reference   text        NOT NULL,
    linked_by   text        NOT NULL,
    linked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, kind, gateway_ref)
);

-- The gateway's fee on each reconciled charge is the platform's expense (gateway_fees); what
-- it pays out for the day (net of fees and refunds) arrives from outside (gateway_settlements).
-- Both are posted as one 'gateway_settlement' transaction per statement line, so the gateway
-- clearing account nets to zero for a reconciled day.
ALTER TABLE accounts DROP CONSTRAINT accounts_purpose_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_purpose_check CHECK (purpose IN (
    'wallet', 'payable', 'fee_income', 'gateway_clearing', 'order_clearing',
    'coupon_subsidy', 'funding', 'payouts', 'late_payments_payable', 'card_refunds_payable',
    'gateway_fees', 'gateway_settlements'));

ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_kind_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_kind_check CHECK (kind IN (
    'purchase', 'top_up', 'withdrawal', 'refund', 'correction', 'late_payment',
    'late_payment_refund', 'card_refund', 'card_refund_to_wallet', 'gateway_settlement'));
