"""`payflow bench`: throughput, latency and cost per order, against a bare relay baseline."""
