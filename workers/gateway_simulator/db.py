"""The simulator's durable state: one SQLite file in WAL mode.

Everything runs on the event loop's thread, and every write goes through writes.py (no await
inside one, so a check-then-insert never interleaves with another request). WAL with
synchronous=NORMAL keeps every committed transaction across a kill -9 of the process.
"""

import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS charges (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    gateway_ref TEXT NOT NULL UNIQUE,
    product TEXT NOT NULL,              -- direct (/v1 charge) or redirect (/v2 trade)
    payment_id TEXT NOT NULL,
    order_id TEXT,
    subject TEXT,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,               -- pending, succeeded, failed, voided
    failure_reason TEXT,
    outcome TEXT NOT NULL,              -- what it becomes when it settles
    outcome_reason TEXT,
    deliveries INTEGER NOT NULL,
    reported_delta INTEGER NOT NULL,
    announce INTEGER NOT NULL,          -- 0: no callback ever (unannounced_charge)
    settle_at REAL NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    succeeded_at TEXT
);
CREATE INDEX IF NOT EXISTS charges_payment ON charges (product, payment_id);
CREATE INDEX IF NOT EXISTS charges_due ON charges (status, settle_at);
CREATE TABLE IF NOT EXISTS refunds (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    refund_ref TEXT NOT NULL UNIQUE,
    product TEXT NOT NULL,
    refund_id TEXT NOT NULL,
    gateway_ref TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    reason TEXT,
    status TEXT NOT NULL,               -- pending, succeeded, failed
    failure_reason TEXT,
    settle_at REAL NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    succeeded_at TEXT,
    UNIQUE (product, refund_id)
);
CREATE INDEX IF NOT EXISTS refunds_due ON refunds (status, settle_at);
CREATE INDEX IF NOT EXISTS refunds_charge ON refunds (gateway_ref);
CREATE TABLE IF NOT EXISTS payouts (
    payout_id TEXT PRIMARY KEY,
    payout_ref TEXT,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    destination TEXT NOT NULL,
    status TEXT NOT NULL,               -- paid, declined
    reason TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS keys_age ON idempotency_keys (created_at);
CREATE TABLE IF NOT EXISTS callbacks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    callback_id TEXT NOT NULL,
    provider TEXT NOT NULL,             -- direct or redirect: the webhook path
    kind TEXT NOT NULL,                 -- payment or refund
    payment_id TEXT NOT NULL,
    reference TEXT NOT NULL,            -- gateway_ref or refund_ref, for logs
    body TEXT NOT NULL,
    wrong_key INTEGER NOT NULL,         -- 1: signed with a wrong key (bad_signature)
    held INTEGER NOT NULL,              -- 1: waits for a later callback (reorder_callbacks)
    state TEXT NOT NULL,                -- pending, delivered, rejected
    due_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS callbacks_due ON callbacks (state, due_at);
-- The callbacks held back for a later one (reorder_callbacks): few, and found without
-- reading every pending callback on each delivery (a backlog of thousands, after the
-- webhook was down, made each delivery scan it all).
CREATE INDEX IF NOT EXISTS callbacks_held ON callbacks (held, state, seq) WHERE held = 1;
"""


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)  # transactions are explicit
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.executescript(SCHEMA)
    return conn
