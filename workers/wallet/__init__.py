"""The wallet stage: top-ups through the gateway, withdrawals frozen then paid out or returned."""
