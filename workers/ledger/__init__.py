"""Money: accounts, the double-entry ledger and fund holds."""
