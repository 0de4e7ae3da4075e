"""The delivery runtime every stage runs on: consume, inbox, outbox, retry, dead letters."""
