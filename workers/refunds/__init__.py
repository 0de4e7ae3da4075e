"""Refunds of settled orders: the rules, the records, and the card share through the gateway."""
