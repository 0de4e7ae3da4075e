-- Refunds of settled orders through the gateway (issue 7, section 4): a whole order, a
-- sub-order or items, full or partial; the buyer's wallet gets its share at once, the card
-- share goes back through the gateway (a gateway_refunds row of kind 'order_refund').

-- sub_order_id NULL: the whole order. amount NULL: a refused request that named none (or
-- zero). 'pending': the card share is still on its way.
ALTER TABLE refunds ALTER COLUMN sub_order_id DROP NOT NULL;
ALTER TABLE refunds ALTER COLUMN amount DROP NOT NULL;
ALTER TABLE refunds ADD CONSTRAINT refunds_amount_named CHECK (
    status = 'rejected' OR amount IS NOT NULL);
ALTER TABLE refunds DROP CONSTRAINT refunds_status_check;
ALTER TABLE refunds ADD CONSTRAINT refunds_status_check CHECK (status IN (
    'pending', 'completed', 'rejected'));
ALTER TABLE refunds
    ADD COLUMN wallet_amount bigint      NOT NULL DEFAULT 0 CHECK (wallet_amount >= 0),
    ADD COLUMN card_amount   bigint      NOT NULL DEFAULT 0 CHECK (card_amount >= 0),
    -- How the card share ended: succeeded, or failed and paid to the wallet instead.
    ADD COLUMN card_outcome  text        CHECK (card_outcome IN ('succeeded', 'to_wallet')),
    ADD COLUMN restock       boolean     NOT NULL DEFAULT false,
    ADD COLUMN completed_at  timestamptz;
-- Before this migration every completed refund went to the wallet.
UPDATE refunds SET wallet_amount = amount, completed_at = created_at WHERE status = 'completed';
ALTER TABLE refunds ADD CONSTRAINT refunds_parts_sum CHECK (
    status = 'rejected' OR wallet_amount + card_amount = amount);

-- What each sub-order gives back (a whole-order refund touches several): the sums that
-- bound later refunds, and the merchant's share of the fee.
CREATE TABLE refund_parts (
    refund_id    text    NOT NULL REFERENCES refunds,
    sub_order_id text    NOT NULL REFERENCES sub_orders,
    amount       bigint  NOT NULL CHECK (amount > 0),
    fee_back     bigint  NOT NULL CHECK (fee_back >= 0 AND fee_back <= amount),
    PRIMARY KEY (refund_id, sub_order_id)
);
CREATE INDEX refund_parts_by_sub_order ON refund_parts (sub_order_id);
INSERT INTO refund_parts (refund_id, sub_order_id, amount, fee_back)
SELECT r.refund_id, r.sub_order_id, r.amount, d.fee * r.amount / d.amount
  FROM refunds r JOIN transaction_details d USING (sub_order_id)
 WHERE r.status = 'completed' AND d.amount > 0;

-- Items given back (a quantity of a sub-order's line), and whether they went back on sale.
CREATE TABLE refund_items (
    refund_id    text    NOT NULL REFERENCES refunds,
    sub_order_id text    NOT NULL,
    sku_id       text    NOT NULL,
    quantity     integer NOT NULL CHECK (quantity > 0),
    restocked    boolean NOT NULL,
    PRIMARY KEY (refund_id, sub_order_id, sku_id),
    FOREIGN KEY (sub_order_id, sku_id) REFERENCES order_items
);
CREATE INDEX refund_items_by_line ON refund_items (sub_order_id, sku_id);

-- The refund of an order names the refund it belongs to (kind 'order_refund').
ALTER TABLE gateway_refunds ADD COLUMN order_refund_id text REFERENCES refunds;
ALTER TABLE gateway_refunds ADD CONSTRAINT gateway_refunds_order_refund_named CHECK (
    (kind = 'order_refund') = (order_refund_id IS NOT NULL));
CREATE UNIQUE INDEX gateway_refunds_one_per_order_refund ON gateway_refunds (order_refund_id)
    WHERE order_refund_id IS NOT NULL;

-- The card share between the refund and the gateway's answer: a platform liability.
ALTER TABLE accounts DROP CONSTRAINT accounts_purpose_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_purpose_check CHECK (purpose IN (
    'wallet', 'payable', 'fee_income', 'gateway_clearing', 'order_clearing',
    'coupon_subsidy', 'funding', 'payouts', 'late_payments_payable', 'card_refunds_payable'));

ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_kind_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_kind_check CHECK (kind IN (
    'purchase', 'top_up', 'withdrawal', 'refund', 'correction', 'late_payment',
    'late_payment_refund', 'card_refund', 'card_refund_to_wallet'));
