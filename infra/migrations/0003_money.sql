-- Accounts, the double-entry ledger, fund holds and the TCC barrier.

CREATE TABLE accounts (
    account_id     text        PRIMARY KEY,
    owner_kind     text        NOT NULL CHECK (owner_kind IN ('buyer', 'merchant', 'platform', 'external')),
    owner_id       text        NOT NULL,
    purpose        text        NOT NULL CHECK (purpose IN (
                       'wallet', 'payable', 'fee_income', 'gateway_clearing', 'order_clearing',
                       'coupon_subsidy', 'funding')),
    currency       char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    total          bigint      NOT NULL DEFAULT 0,
    available      bigint      NOT NULL DEFAULT 0,
    frozen         bigint      NOT NULL DEFAULT 0 CHECK (frozen >= 0),
    -- Only accounts that mirror the outside world (money owed by a gateway, funding
    -- sources) may go below zero; every customer and merchant balance may not.
    may_go_negative boolean    NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (total = available + frozen),
    CHECK (may_go_negative OR available >= 0),
    UNIQUE (owner_kind, owner_id, purpose, currency)
);

-- A ledger transaction groups the legs of one business movement; all legs commit together.
CREATE TABLE ledger_transactions (
    ledger_txn_id   bigserial   PRIMARY KEY,
    kind            text        NOT NULL CHECK (kind IN (
                        'purchase', 'top_up', 'withdrawal', 'refund', 'correction')),
    order_id        text,
    idempotency_key text        NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- One debit and one credit per entry (TigerBeetle style); immutable once written.
CREATE TABLE ledger_entries (
    entry_id          bigserial   PRIMARY KEY,
    ledger_txn_id     bigint      NOT NULL REFERENCES ledger_transactions,
    debit_account_id  text        NOT NULL REFERENCES accounts,
    credit_account_id text        NOT NULL REFERENCES accounts,
    amount            bigint      NOT NULL CHECK (amount > 0),
    currency          char(3)     NOT NULL,
    leg               text        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (debit_account_id <> credit_account_id)
);
CREATE INDEX ledger_entries_debit ON ledger_entries (debit_account_id, entry_id);
CREATE INDEX ledger_entries_credit ON ledger_entries (credit_account_id, entry_id);

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: corrections are new entries', TG_TABLE_NAME;
END $$;
CREATE TRIGGER ledger_entries_immutable BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ledger_transactions_immutable BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Money frozen on an account for one order (the funds participant of TCC).
CREATE TABLE fund_holds (
    order_id     text        NOT NULL,
    account_id   text        NOT NULL REFERENCES accounts,
    amount       bigint      NOT NULL CHECK (amount > 0),
    currency     char(3)     NOT NULL,
    state        text        NOT NULL CHECK (state IN ('held', 'confirmed', 'cancelled')),
    confirmed_amount bigint  NOT NULL DEFAULT 0 CHECK (confirmed_amount >= 0),
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    PRIMARY KEY (order_id, account_id),
    CHECK (confirmed_amount <= amount),
    CHECK ((state = 'held') = (resolved_at IS NULL))
);
CREATE INDEX fund_holds_open ON fund_holds (account_id) WHERE state = 'held';

-- TCC barrier (DTM's sub-transaction barrier, Seata's fence): one row per
-- (global transaction, branch, phase), written in the same transaction as the branch's
-- business change. The unique key turns duplicates into no-ops; a 'try' row written by a
-- Cancel that found no Try ('empty_cancel') blocks a late Try (anti-hanging).
CREATE TABLE tcc_barrier (
    gid        text        NOT NULL,
    branch     text        NOT NULL CHECK (branch IN ('funds', 'stock', 'coupons')),
    phase      text        NOT NULL CHECK (phase IN ('try', 'confirm', 'cancel')),
    origin     text        NOT NULL CHECK (origin IN ('applied', 'empty_cancel')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gid, branch, phase)
);
