"""SQL for the pending-callback queue: a callback is a row until the webhook took it (or
refused it for good), so a restart resumes every undelivered one."""

import sqlite3
from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class Callback:
    seq: int
    callback_id: str
    provider: str
    kind: str
    payment_id: str
    reference: str
    body: str
    wrong_key: bool
    attempts: int


def enqueue(
    conn: sqlite3.Connection,
    *,
    callback_id: str,
    provider: str,
    kind: str,
    payment_id: str,
    reference: str,
    body: str,
    due_at: float,
    wrong_key: bool = False,
    held: bool = False,
) -> None:
    conn.execute(
        """INSERT INTO callbacks (callback_id, provider, kind, payment_id, reference, body,
                                  wrong_key, held, state, due_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)""",
        (callback_id, provider, kind, payment_id, reference, body, wrong_key, held, due_at),
    )


def due(conn: sqlite3.Connection, now: float, limit: int = 200) -> list[Callback]:
    rows = conn.execute(
        """SELECT * FROM callbacks WHERE state = 'pending' AND due_at <= ?
           ORDER BY due_at, seq LIMIT ?""",
        (now, limit),
    ).fetchall()
    return [
        Callback(
            seq=r["seq"],
            callback_id=r["callback_id"],
            provider=r["provider"],
            kind=r["kind"],
            payment_id=r["payment_id"],
            reference=r["reference"],
            body=r["body"],
            wrong_key=bool(r["wrong_key"]),
            attempts=r["attempts"],
        )
        for r in rows
    ]


def next_due(conn: sqlite3.Connection, busy: Collection[int] = ()) -> float | None:
    """The earliest due time of a pending callback not already being sent (`busy`)."""
    marks = ",".join("?" * len(busy))
    value: float | None = conn.execute(
        f"SELECT MIN(due_at) FROM callbacks WHERE state = 'pending' AND seq NOT IN ({marks})",
        tuple(busy),
    ).fetchone()[0]
    return value


def pending_count(conn: sqlite3.Connection) -> int:
    count: int = conn.execute("SELECT COUNT(*) FROM callbacks WHERE state = 'pending'").fetchone()[
        0
    ]
    return count


def delivered(conn: sqlite3.Connection, seq: int, now: float) -> None:
    """Done; and a callback held back for a later one (reorder) may go now."""
    conn.execute(
        "UPDATE callbacks SET state = 'delivered', attempts = attempts + 1 WHERE seq = ?", (seq,)
    )
    conn.execute(
        """UPDATE callbacks SET held = 0, due_at = ?
           WHERE state = 'pending' AND held = 1 AND seq < ?""",
        (now, seq),
    )


def rejected(conn: sqlite3.Connection, seq: int, error: str) -> None:
    conn.execute(
        """UPDATE callbacks SET state = 'rejected', attempts = attempts + 1, last_error = ?
           WHERE seq = ?""",
        (error, seq),
    )


def retry_at(conn: sqlite3.Connection, seq: int, due_at: float, error: str) -> None:
    conn.execute(
        """UPDATE callbacks SET attempts = attempts + 1, due_at = ?, last_error = ?
           WHERE seq = ?""",
        (due_at, error, seq),
    )
