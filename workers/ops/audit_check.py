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
