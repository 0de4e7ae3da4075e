"""SQL for idempotency keys: the first answer to a key, kept at least the retention period."""

import sqlite3
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Stored:
    fingerprint: str
    status: int
    body: str


def get(conn: sqlite3.Connection, key: str) -> Stored | None:
    row = conn.execute(
        "SELECT fingerprint, status, body FROM idempotency_keys WHERE key = ?", (key,)
    ).fetchone()
    return Stored(row["fingerprint"], row["status"], row["body"]) if row else None


def put(
    conn: sqlite3.Connection, key: str, fingerprint: str, status: int, body: str, at: float
) -> None:
    conn.execute(
        "INSERT INTO idempotency_keys (key, fingerprint, status, body, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (key, fingerprint, status, body, at),
    )


def prune(conn: sqlite3.Connection, older_than: float) -> int:
    cur: Any = conn.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (older_than,))
    return int(cur.rowcount)
