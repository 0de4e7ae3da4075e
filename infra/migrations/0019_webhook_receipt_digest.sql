-- A gateway that retries a callback whose 200 it lost sends the same body again: answered 200
-- (it is on the topic already) when the body is the one accepted; another body under an
-- accepted callback id is still refused. NULL for receipts kept before this column.
ALTER TABLE webhook_receipts ADD COLUMN body_digest text;
