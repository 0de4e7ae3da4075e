"""Prometheus metrics, labelled by stage."""

from prometheus_client import Counter, Gauge, Histogram

CONSUMED = Counter("payflow_consumed_total", "Messages consumed", ["stage"])
PROCESSED = Counter("payflow_processed_total", "Events processed with effect", ["stage"])
DUPLICATES = Counter("payflow_duplicates_total", "Redelivered events skipped", ["stage"])
RETRIED = Counter(
    "payflow_batch_retries_total", "Batch attempts after a transient error", ["stage"]
)
DEAD_LETTERED = Counter(
    "payflow_dead_lettered_total", "Messages sent to a DLQ", ["stage", "reason"]
)
PUBLISHED = Counter("payflow_published_total", "Events published", ["stage"])
LATENCY = Histogram(
    "payflow_batch_seconds",
    "Time to process and publish one batch",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
LAG = Gauge("payflow_consumer_lag", "Messages behind the partition end", ["stage"])
