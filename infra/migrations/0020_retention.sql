-- Pruning the delivery tables (PAYFLOW_RETENTION_DAYS, workers/runtime/retention.py): each
-- small batch of old rows is found by index, not by scanning the table. One index per table,
-- led by the column the demo's progress counts filter on (workers/ops/progress.py: per consumer,
-- per topic, since a time), so the same index serves both; the prune walks it one consumer
-- (topic) at a time. A second index would cost every insert of the hot path.
CREATE INDEX inbox_by_consumer_time ON inbox (consumer, processed_at);
CREATE INDEX outbox_by_topic_time ON outbox (topic, created_at);
-- dead_letters stays small (every open one is an operator's case): its prune scans it.
