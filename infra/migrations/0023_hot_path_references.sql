-- References on the hot path checked where they are written, and by the audit, instead of
-- by foreign keys. A foreign key check runs a query per inserted row and takes a key-share
-- lock on the row it finds: a tuple lock written to the page and the WAL, and a multixact
-- when several transactions share it. The rows found are the hottest there are (the hot
-- merchant, the platform and merchant accounts, popular SKUs, the order every stage
-- updates). Without these, Postgres spent 0.95-1.05 ms of CPU per order instead of
-- 1.33-1.36, and the statement writing a batch's transactions 4.7 ms instead of 22.5
-- (docs/performance.md, step 31).
--
-- Each reference dropped has one writer that cannot write it dangling:
--   sub_orders.order_id, order_items.sub_order_id, ledger_entries.ledger_txn_id,
--     transaction_details.transaction_id: written in the same statement as the row they
--     name (order_build/store.py, ledger/postings.py, fund_freeze/store.py);
--   sub_orders.merchant_id and .warehouse_id, order_items.sku_id, stock_holds.sku_id: taken
--     from catalogue rows read in the same transaction; the catalogue keeps its own keys and
--     nothing deletes from it; a hold changes the SKU's stock row, which must exist;
--   ledger_entries' accounts, fund_holds.account_id: a posting or a freeze changes each
--     account's balance row and refuses one that is not there (ledger/postings.py,
--     ledger/deferred_balances.py); nothing deletes an account;
--   transactions.order_id, transaction_details.sub_order_id and .merchant_id: fund freeze
--     writes them only for an order.built that matches the order, buyer, total and
--     sub-orders order build stored (fund_freeze/known.py), which the key never checked.
-- `payflow audit` checks every one of them (workers/ops/audit_references.py). The other
-- references taken from events (a payment's transaction, a charge's payment) keep their keys.
ALTER TABLE sub_orders
    DROP CONSTRAINT sub_orders_order_id_fkey,
    DROP CONSTRAINT sub_orders_merchant_id_fkey,
    DROP CONSTRAINT sub_orders_warehouse_id_fkey;
ALTER TABLE order_items
    DROP CONSTRAINT order_items_sub_order_id_fkey,
    DROP CONSTRAINT order_items_sku_id_fkey;
ALTER TABLE stock_holds DROP CONSTRAINT stock_holds_sku_id_fkey;
ALTER TABLE ledger_entries
    DROP CONSTRAINT ledger_entries_ledger_txn_id_fkey,
    DROP CONSTRAINT ledger_entries_debit_account_id_fkey,
    DROP CONSTRAINT ledger_entries_credit_account_id_fkey;
ALTER TABLE fund_holds DROP CONSTRAINT fund_holds_account_id_fkey;
ALTER TABLE transactions DROP CONSTRAINT transactions_order_id_fkey;
ALTER TABLE transaction_details
    DROP CONSTRAINT transaction_details_transaction_id_fkey,
    DROP CONSTRAINT transaction_details_sub_order_id_fkey,
    DROP CONSTRAINT transaction_details_merchant_id_fkey;
