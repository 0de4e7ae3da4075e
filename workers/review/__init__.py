"""The manual-review queue: one row per case a human must decide, and the log of what
operators did about it (issue 8)."""
