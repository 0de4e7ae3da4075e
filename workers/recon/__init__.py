"""Reconciliation against the gateway's daily statement (docs/reconciliation.md)."""
