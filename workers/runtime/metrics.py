"""Prometheus metrics, labelled by stage (and by reason or error class where that helps)."""

from prometheus_client import Counter, Gauge, Histogram

CONSUMED = Counter("payflow_consumed_total", "Messages consumed", ["stage"])
PROCESSED = Counter("payflow_processed_total", "Events processed with effect", ["stage"])
DUPLICATES = Counter("payflow_duplicates_total", "Redelivered events skipped", ["stage"])
RETRIED = Counter(
    "payflow_batch_retries_total",
    "Batch attempts after a transient error, by the error's class",
    ["stage", "reason"],
)
BATCH_FAILURES = Counter(
    "payflow_batch_failures_total",
    "Batches that failed (after retries, or with an error no retry fixes), by error class",
    ["stage", "error_class"],
)
DEADLOCKS = Counter(
    "payflow_deadlocks_total", "Batch attempts undone by a Postgres deadlock", ["stage"]
)
DEAD_LETTERED = Counter(
    "payflow_dead_lettered_total",
    "Messages sent to a DLQ (undecodable ones too)",
    ["stage", "reason"],
)
PG_ROUNDTRIPS = Counter(
    "payflow_pg_roundtrips_total",
    "Statements sent to Postgres (each a round trip), by stage (or 'other')",
    ["stage"],
)
PUBLISHED = Counter("payflow_published_total", "Events published", ["stage"])
LATENCY = Histogram(
    "payflow_batch_seconds",
    "Time to process and publish one batch",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
LAG = Gauge(
    "payflow_consumer_lag", "Messages behind the partition end (broker high-water)", ["stage"]
)
LAST_SUCCESS = Gauge(
    "payflow_last_successful_batch_timestamp_seconds",
    "Unix time of the last batch committed",
    ["stage"],
)
PARTITIONS = Gauge("payflow_partitions_assigned", "Partitions assigned to this process", ["stage"])
DEPENDENCY_UP = Gauge(
    "payflow_dependency_up",
    "1 when the last probe of Kafka, Postgres or Redis answered",
    ["dependency"],
)
WEBHOOK_CALLBACKS = Counter(
    "payflow_webhook_callbacks_total",
    "Callbacks posted to the webhook, by provider and outcome (accepted, unavailable, or the "
    "reason code they were refused with)",
    ["provider", "outcome"],
)
UNKNOWN_PAYMENTS = Counter(
    "payflow_payments_unknown_total",
    "Payments whose create call got no answer we could trust (left to the sweeper)",
)
SWEEPER_CHECKS = Counter(
    "payflow_sweeper_checks_total",
    "Status queries the sweeper made, by what they came to (succeeded, failed, pending, "
    "unknown, never_received, manual_review, ...)",
    ["result"],
)
PAYMENTS_EXPIRED = Counter(
    "payflow_payments_expired_total",
    "Orders cancelled because they were not paid within the payment window",
)
