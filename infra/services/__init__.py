"""Local Kafka, PostgreSQL and Redis without Docker; see manager.py for up/down/status."""
