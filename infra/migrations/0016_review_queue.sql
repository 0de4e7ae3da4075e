-- One queue for everything a human must decide (issue 8), and the log of what operators did.

-- A case: what it is about (subject, unique per kind, so the same trouble seen twice is one
-- case), why, the evidence, and how it ended. Opened by the workers where they give up.
CREATE TABLE review_cases (
    case_id     bigserial   PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN (
                    'payment_unresolved', 'amount_mismatch', 'race_loser', 'hold_expired',
                    'confirm_after_cancel', 'cancel_after_confirm', 'late_money_held',
                    'refund_held', 'top_up_unresolved', 'recon_exception', 'dead_letter',
                    'settlement_check')),
    subject     text        NOT NULL,
    order_id    text,
    payment_id  text,
    reason      text        NOT NULL,
    evidence    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    state       text        NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'resolved')),
    resolution  text,
    resolved_by text,
    resolved_at timestamptz,
    opened_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, subject),
    CHECK ((state = 'resolved') = (resolution IS NOT NULL AND resolved_by IS NOT NULL))
);
CREATE INDEX review_cases_open ON review_cases (opened_at) WHERE state = 'open';
CREATE INDEX review_cases_by_order ON review_cases (order_id);

-- Every operator action, applied or refused: who, when, what, why. request_key makes a
-- repeated command one action (the same key again is answered with the first outcome).
CREATE TABLE operator_actions (
    action_id   bigserial   PRIMARY KEY,
    case_id     bigint      REFERENCES review_cases,
    operator    text        NOT NULL CHECK (operator <> ''),
    action      text        NOT NULL,
    reason      text        NOT NULL CHECK (reason <> ''),
    request_key text        NOT NULL UNIQUE,
    outcome     text        NOT NULL,
    detail      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    acted_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX operator_actions_by_case ON operator_actions (case_id);
