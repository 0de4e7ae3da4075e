-- Catalogue, stock and coupons (order build's data).

CREATE TABLE merchants (
    merchant_id text PRIMARY KEY,
    name        text    NOT NULL,
    -- Platform fee in basis points of each sub-order paid to this merchant.
    fee_bps     integer NOT NULL DEFAULT 60 CHECK (fee_bps BETWEEN 0 AND 10000)
);

CREATE TABLE warehouses (
    warehouse_id text PRIMARY KEY,
    name         text NOT NULL
);

CREATE TABLE categories (
    category_id text PRIMARY KEY,
    name        text NOT NULL
);

CREATE TABLE products (
    product_id  text PRIMARY KEY,
    merchant_id text NOT NULL REFERENCES merchants,
    category_id text NOT NULL REFERENCES categories,
    name        text NOT NULL
);

CREATE TABLE skus (
    sku_id       text    PRIMARY KEY,
    product_id   text    NOT NULL REFERENCES products,
    warehouse_id text    NOT NULL REFERENCES warehouses,
    specs        jsonb   NOT NULL DEFAULT '{}',
    currency     char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    unit_price   bigint  NOT NULL CHECK (unit_price >= 0),
    active       boolean NOT NULL DEFAULT true
);

-- Quantity price tiers: from min_quantity units on, each unit costs unit_price.
CREATE TABLE price_tiers (
    sku_id       text    NOT NULL REFERENCES skus,
    min_quantity integer NOT NULL CHECK (min_quantity >= 2),
    unit_price   bigint  NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (sku_id, min_quantity)
);

CREATE TABLE stock (
    sku_id    text    PRIMARY KEY REFERENCES skus,
    available integer NOT NULL CHECK (available >= 0),
    held      integer NOT NULL DEFAULT 0 CHECK (held >= 0),
    sold      integer NOT NULL DEFAULT 0 CHECK (sold >= 0)
);

CREATE TABLE stock_holds (
    order_id   text        NOT NULL,
    sku_id     text        NOT NULL REFERENCES skus,
    quantity   integer     NOT NULL CHECK (quantity > 0),
    state      text        NOT NULL CHECK (state IN ('held', 'sold', 'released')),
    created_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    PRIMARY KEY (order_id, sku_id)
);

CREATE TABLE coupons (
    coupon_id     text        PRIMARY KEY,
    code          text        NOT NULL UNIQUE,
    kind          text        NOT NULL CHECK (kind IN ('full_reduction', 'discount_rate', 'ladder')),
    currency      char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- full_reduction: spend >= threshold, get reduction off.
    threshold     bigint      CHECK (threshold >= 0),
    reduction     bigint      CHECK (reduction >= 0),
    -- discount_rate: rate_bps off, at most max_discount.
    rate_bps      integer     CHECK (rate_bps BETWEEN 0 AND 10000),
    max_discount  bigint      CHECK (max_discount >= 0),
    -- ladder: [[threshold, reduction], ...], the highest step reached applies.
    ladder        jsonb,
    merchant_id   text        REFERENCES merchants,  -- NULL: platform-wide
    valid_from    timestamptz NOT NULL,
    valid_until   timestamptz NOT NULL,
    max_grants    integer     CHECK (max_grants >= 0),
    per_buyer_limit integer   NOT NULL DEFAULT 1 CHECK (per_buyer_limit >= 1),
    CHECK (valid_until > valid_from)
);

CREATE TABLE coupon_grants (
    grant_id   text        PRIMARY KEY,
    coupon_id  text        NOT NULL REFERENCES coupons,
    buyer_id   text        NOT NULL,
    state      text        NOT NULL CHECK (state IN ('available', 'locked', 'used', 'expired')),
    order_id   text,
    granted_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((state IN ('locked', 'used')) = (order_id IS NOT NULL))
);
CREATE INDEX coupon_grants_by_buyer ON coupon_grants (buyer_id, coupon_id, state);
