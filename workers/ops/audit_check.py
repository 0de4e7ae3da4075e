"""One audit check: a rule of the books, and the SQL that finds what breaks it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    what: str
    count_sql: str  # how many things were checked
    violations_sql: str  # offending rows
    # Liveness: holds and payments resolved in time. Needs the sweeper running; a test of the
    # money core alone (no sweeper) checks consistency only.
    liveness: bool = False


def posted_under(prefix: str) -> str:
    """SQL of the amount posted per ledger transaction whose idempotency key starts with
    `prefix` (a constant of ours): joined to what a check compares, in one pass over the
    entries, where a subquery per row would read every entry each time (ledger_entries is
    indexed by account, not by transaction)."""
    return f"""SELECT l.idempotency_key, sum(e.amount) AS amount
                 FROM ledger_transactions l JOIN ledger_entries e USING (ledger_txn_id)
                WHERE starts_with(l.idempotency_key, '{prefix}') GROUP BY 1"""
