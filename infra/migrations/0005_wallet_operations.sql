-- Wallet operations: top-ups through the gateway and withdrawals paid out to a bank.

CREATE TABLE wallet_operations (
    operation_id   text        PRIMARY KEY,
    kind           text        NOT NULL CHECK (kind IN ('top_up', 'withdrawal')),
    buyer_id       text        NOT NULL,
    currency       char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount         bigint      NOT NULL CHECK (amount > 0),
    destination    text,
    -- The same operation id with other content is refused.
    request_digest text        NOT NULL,
    status         text        NOT NULL CHECK (status IN (
                       'requested', 'frozen', 'completed', 'failed', 'manual_review')),
    status_reason  text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'withdrawal') = (destination IS NOT NULL))
);

-- A gateway charge now pays either an order's transaction or a wallet top-up.
ALTER TABLE payment_requests
    ALTER COLUMN transaction_id DROP NOT NULL,
    ALTER COLUMN order_id DROP NOT NULL,
    ADD COLUMN wallet_operation_id text REFERENCES wallet_operations,
    ADD CONSTRAINT payment_requests_pays_one_thing
        CHECK ((transaction_id IS NULL) <> (wallet_operation_id IS NULL)),
    ADD CONSTRAINT payment_requests_order_with_transaction
        CHECK ((order_id IS NULL) = (transaction_id IS NULL));

-- Payouts sent to the gateway for withdrawals, with the raw messages both ways.
CREATE TABLE payouts (
    operation_id    text        PRIMARY KEY REFERENCES wallet_operations,
    idempotency_key text        NOT NULL UNIQUE,
    request_body    text        NOT NULL,
    response_status integer,
    response_body   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Money paid out to banks leaves payflow through this outside-world account.
ALTER TABLE accounts DROP CONSTRAINT accounts_purpose_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_purpose_check CHECK (purpose IN (
    'wallet', 'payable', 'fee_income', 'gateway_clearing', 'order_clearing',
    'coupon_subsidy', 'funding', 'payouts'));
