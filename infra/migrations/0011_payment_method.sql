-- How an order is paid (docs/gateway-api.md: PAYFLOW_GATEWAY_ROUTES picks the adapter by
-- method) and which adapter each payment request went through, so a query, a void or a
-- refund later asks the same gateway. Rows before this migration were cards through direct.
ALTER TABLE orders ADD COLUMN payment_method text NOT NULL DEFAULT 'card';
ALTER TABLE payment_requests ADD COLUMN adapter text NOT NULL DEFAULT 'direct';
