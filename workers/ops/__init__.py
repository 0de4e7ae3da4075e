"""Operator tools: dead letters, the audit, the demo and its seed data."""
