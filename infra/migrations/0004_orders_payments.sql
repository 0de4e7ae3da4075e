-- Orders, payment transactions, gateway requests and callbacks.

CREATE TABLE orders (
    order_id           text        PRIMARY KEY,
    buyer_id           text        NOT NULL,
    currency           char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    payment_preference text        NOT NULL CHECK (payment_preference IN (
                           'wallet_first', 'wallet_only', 'gateway_only')),
    subtotal           bigint      NOT NULL CHECK (subtotal >= 0),
    discount           bigint      NOT NULL CHECK (discount >= 0),
    total              bigint      NOT NULL CHECK (total >= 0),
    -- Digest of the submitted order: the same order id with other content is refused.
    request_digest     text        NOT NULL,
    state              text        NOT NULL CHECK (state IN (
                           'built', 'funds_frozen', 'payment_requested', 'paid',
                           'settled', 'cancelled', 'manual_review')),
    state_reason       text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (total = subtotal - discount)
);
CREATE INDEX orders_by_state ON orders (state, updated_at);

CREATE TABLE sub_orders (
    sub_order_id text    PRIMARY KEY,
    order_id     text    NOT NULL REFERENCES orders,
    merchant_id  text    NOT NULL REFERENCES merchants,
    warehouse_id text    NOT NULL REFERENCES warehouses,
    currency     char(3) NOT NULL,
    subtotal     bigint  NOT NULL CHECK (subtotal >= 0),
    discount     bigint  NOT NULL CHECK (discount >= 0),
    amount       bigint  NOT NULL CHECK (amount >= 0),
    CHECK (amount = subtotal - discount)
);
CREATE INDEX sub_orders_by_order ON sub_orders (order_id);

CREATE TABLE order_items (
    sub_order_id text    NOT NULL REFERENCES sub_orders,
    sku_id       text    NOT NULL REFERENCES skus,
    quantity     integer NOT NULL CHECK (quantity > 0),
    unit_price   bigint  NOT NULL CHECK (unit_price >= 0),
    line_total   bigint  NOT NULL CHECK (line_total >= 0),
    PRIMARY KEY (sub_order_id, sku_id),
    CHECK (line_total = unit_price * quantity)
);

-- Orders refused before anything was held; kept so a redelivery is answered the same way.
CREATE TABLE order_rejections (
    order_id       text        PRIMARY KEY,
    request_digest text        NOT NULL,
    reason_code    text        NOT NULL,
    detail         text        NOT NULL,
    rejected_at    timestamptz NOT NULL DEFAULT now()
);

-- The payment record of an order ("transaction"): how it is paid and where it stands.
CREATE TABLE transactions (
    transaction_id text        PRIMARY KEY,
    order_id       text        NOT NULL UNIQUE REFERENCES orders,
    buyer_id       text        NOT NULL,
    currency       char(3)     NOT NULL,
    total          bigint      NOT NULL CHECK (total >= 0),
    wallet_part    bigint      NOT NULL CHECK (wallet_part >= 0),
    gateway_part   bigint      NOT NULL CHECK (gateway_part >= 0),
    status         text        NOT NULL CHECK (status IN (
                       'pending_payment', 'paid', 'settled', 'cancelled', 'manual_review')),
    status_reason  text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (wallet_part + gateway_part = total)
);

-- One line per sub-order / merchant: what the merchant is owed and the platform's fee.
CREATE TABLE transaction_details (
    transaction_id text    NOT NULL REFERENCES transactions,
    sub_order_id   text    NOT NULL REFERENCES sub_orders,
    merchant_id    text    NOT NULL REFERENCES merchants,
    currency       char(3) NOT NULL,
    amount         bigint  NOT NULL CHECK (amount >= 0),
    fee            bigint  NOT NULL CHECK (fee >= 0),
    net            bigint  NOT NULL CHECK (net >= 0),
    PRIMARY KEY (transaction_id, sub_order_id),
    CHECK (fee + net = amount)
);

-- Requests sent to a gateway, with the raw messages both ways.
CREATE TABLE payment_requests (
    payment_id      text        PRIMARY KEY,
    transaction_id  text        NOT NULL REFERENCES transactions,
    order_id        text        NOT NULL,
    attempt         integer     NOT NULL CHECK (attempt >= 1),
    -- Sent to the gateway: a retried request can never charge twice.
    idempotency_key text        NOT NULL UNIQUE,
    currency        char(3)     NOT NULL,
    amount          bigint      NOT NULL CHECK (amount > 0),
    status          text        NOT NULL CHECK (status IN (
                        'requesting', 'pending', 'succeeded', 'failed', 'unknown', 'manual_review')),
    gateway_ref     text UNIQUE,
    request_body    text        NOT NULL,
    response_status integer,
    response_body   text,
    -- Fencing token of the last writer that held the order's Redis lock.
    fence           bigint      NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (transaction_id, attempt)
);

-- Every callback received, verified or not, and what we made of it.
CREATE TABLE gateway_callbacks (
    event_id    uuid        PRIMARY KEY,
    provider    text        NOT NULL,
    callback_id text,
    payment_id  text,
    gateway_ref text,
    raw_body    text        NOT NULL,
    signature   text        NOT NULL,
    verdict     text        NOT NULL CHECK (verdict IN (
                    'applied', 'duplicate', 'late', 'mismatch', 'forged', 'unmatched', 'malformed')),
    detail      text,
    received_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gateway_callbacks_by_payment ON gateway_callbacks (payment_id);
