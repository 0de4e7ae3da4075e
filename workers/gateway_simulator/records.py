"""SQL for charges (and trades), refunds and payouts."""

import sqlite3
from typing import Any

Row = sqlite3.Row


def insert_charge(conn: sqlite3.Connection, **fields: Any) -> Row:
    """The new charge's row, as stored (its seq and defaults), without reading it again."""
    names = ", ".join(fields)
    marks = ", ".join(f":{n}" for n in fields)
    # fetchall, not fetchone: the statement must run to its end before the savepoint is
    # released.
    rows: list[Row] = conn.execute(
        f"INSERT INTO charges ({names}) VALUES ({marks}) RETURNING *", fields
    ).fetchall()
    return rows[0]


def charge(conn: sqlite3.Connection, product: str, gateway_ref: str) -> Row | None:
    row: Row | None = conn.execute(
        "SELECT * FROM charges WHERE product = ? AND gateway_ref = ?", (product, gateway_ref)
    ).fetchone()
    return row


def charges_for(conn: sqlite3.Connection, product: str, payment_id: str) -> list[Row]:
    return conn.execute(
        "SELECT * FROM charges WHERE product = ? AND payment_id = ? ORDER BY seq",
        (product, payment_id),
    ).fetchall()


def all_charges(conn: sqlite3.Connection, product: str) -> list[Row]:
    return conn.execute(
        "SELECT * FROM charges WHERE product = ? ORDER BY seq", (product,)
    ).fetchall()


def void_charge(conn: sqlite3.Connection, gateway_ref: str, reason: str, now: str) -> None:
    conn.execute(
        """UPDATE charges SET status = 'voided', failure_reason = ?, updated_at = ?
           WHERE gateway_ref = ? AND status = 'pending'""",
        (reason, now, gateway_ref),
    )


def pay_now(conn: sqlite3.Connection, gateway_ref: str, at: float) -> None:
    conn.execute(
        "UPDATE charges SET settle_at = ? WHERE gateway_ref = ? AND status = 'pending'",
        (at, gateway_ref),
    )


def due_charges(conn: sqlite3.Connection, now: float) -> list[Row]:
    return conn.execute(
        "SELECT * FROM charges WHERE status = 'pending' AND settle_at <= ? ORDER BY seq", (now,)
    ).fetchall()


def settle_charge(conn: sqlite3.Connection, row: Row, now: str) -> Row | None:
    """The charge as settled; None if it was no longer pending (voided meanwhile)."""
    succeeded = row["outcome"] == "succeeded"
    settled: list[Row] = conn.execute(
        """UPDATE charges SET status = ?, failure_reason = ?, updated_at = ?, succeeded_at = ?
           WHERE seq = ? AND status = 'pending' RETURNING *""",
        (row["outcome"], row["outcome_reason"], now, now if succeeded else None, row["seq"]),
    ).fetchall()
    return settled[0] if settled else None


def insert_refund(conn: sqlite3.Connection, **fields: Any) -> None:
    names = ", ".join(fields)
    marks = ", ".join(f":{n}" for n in fields)
    conn.execute(f"INSERT INTO refunds ({names}) VALUES ({marks})", fields)


def refund(conn: sqlite3.Connection, product: str, refund_id: str) -> Row | None:
    row: Row | None = conn.execute(
        "SELECT * FROM refunds WHERE product = ? AND refund_id = ?", (product, refund_id)
    ).fetchone()
    return row


def refund_by_ref(conn: sqlite3.Connection, refund_ref: str) -> Row | None:
    row: Row | None = conn.execute(
        "SELECT * FROM refunds WHERE refund_ref = ?", (refund_ref,)
    ).fetchone()
    return row


def refunded_total(conn: sqlite3.Connection, gateway_ref: str) -> int:
    """What is refunded or being refunded: a failed refund gives its amount back."""
    total: int = conn.execute(
        "SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE gateway_ref = ? AND status != 'failed'",
        (gateway_ref,),
    ).fetchone()[0]
    return total


def due_refunds(conn: sqlite3.Connection, now: float) -> list[Row]:
    return conn.execute(
        "SELECT * FROM refunds WHERE status = 'pending' AND settle_at <= ? ORDER BY seq", (now,)
    ).fetchall()


def settle_refund(
    conn: sqlite3.Connection, seq: int, status: str, reason: str | None, now: str
) -> None:
    conn.execute(
        """UPDATE refunds SET status = ?, failure_reason = ?, updated_at = ?, succeeded_at = ?
           WHERE seq = ? AND status = 'pending'""",
        (status, reason, now, now if status == "succeeded" else None, seq),
    )


def next_due(conn: sqlite3.Connection) -> float | None:
    """The earliest time a pending charge or refund settles."""
    value: float | None = conn.execute(
        """SELECT MIN(t) FROM (
             SELECT MIN(settle_at) AS t FROM charges WHERE status = 'pending'
             UNION ALL SELECT MIN(settle_at) FROM refunds WHERE status = 'pending')"""
    ).fetchone()[0]
    return value


def payout(conn: sqlite3.Connection, payout_id: str) -> Row | None:
    row: Row | None = conn.execute(
        "SELECT * FROM payouts WHERE payout_id = ?", (payout_id,)
    ).fetchone()
    return row


def insert_payout(conn: sqlite3.Connection, **fields: Any) -> None:
    names = ", ".join(fields)
    marks = ", ".join(f":{n}" for n in fields)
    conn.execute(f"INSERT INTO payouts ({names}) VALUES ({marks})", fields)


def statement_rows(conn: sqlite3.Connection, day: str) -> dict[str, list[Row]]:
    """Succeeded charges and refunds and paid payouts of one UTC day (`YYYY-MM-DD`)."""
    like = f"{day}T%"
    return {
        "charge": conn.execute(
            "SELECT * FROM charges WHERE status = 'succeeded' AND succeeded_at LIKE ?", (like,)
        ).fetchall(),
        "refund": conn.execute(
            "SELECT * FROM refunds WHERE status = 'succeeded' AND succeeded_at LIKE ?", (like,)
        ).fetchall(),
        "payout": conn.execute(
            "SELECT * FROM payouts WHERE status = 'paid' AND created_at LIKE ?", (like,)
        ).fetchall(),
    }
