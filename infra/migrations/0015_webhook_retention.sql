-- Pruning the webhook's tables (PAYFLOW_WEBHOOK_RETENTION_DAYS, workers/webhook/retention.py):
-- each small batch of old rows is found by index, not by scanning the table. A receipt ages by
-- its signed timestamp (a replay past the tolerance is refused as stale); a rejection by when
-- it came (webhook_rejections_by_time, 0010).
CREATE INDEX webhook_receipts_by_signed_at ON webhook_receipts (signed_at);
