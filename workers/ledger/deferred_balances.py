"""Wallet balance changes parked in the transaction and applied once per account at the end.

Wallets are hot across stages: fund freeze freezes, settlement spends or returns what was
frozen. Updated at once, a wallet row stays locked from its event to the batch's commit and
the two stages queue on each other (and deadlock, each holding rows the other wants).
Parked instead, each account changes once per batch, in account-id order, just before the
commit (`flush`, from the stage's `before_commit`). The parked rows live in a temp table, so
a savepoint that rolls back takes its changes with it, and a commit with changes left
unflushed fails: none is ever lost. (Credits no constraint can refuse, such as merchant
payables, are parked by `postings` in the same way.)

A freeze reads the balance net of the batch's own parked changes, without a lock. Another
transaction may spend the same money before the flush (a withdrawal, a replica): the flush
then finds too little and raises `BalanceMoved`, a transient error, so the batch runs again
on fresh numbers. Frozen money going below zero is not a race but a broken invariant.
"""

from collections.abc import Iterable

import asyncpg

from workers.runtime import temp_tables
from workers.runtime.errors import PermanentError, TransientError


class BalanceMoved(TransientError):
    """Money another transaction took since this batch read the balance: run it again."""


_TABLE = temp_tables.register(
    "deferred_balances",
    "account_id text NOT NULL, available bigint NOT NULL, frozen bigint NOT NULL",
    "deferred_balances.flush (or postings.flush_deferred)",
)

_AVAILABLE = """
SELECT a.account_id,
       a.available + coalesce((SELECT sum(d.available) FROM pg_temp.deferred_balances d
                                WHERE d.account_id = a.account_id), 0) AS available
  FROM accounts a WHERE a.account_id = ANY($1::text[])"""

_PARK = """
INSERT INTO pg_temp.deferred_balances (account_id, available, frozen)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])"""

# Rows locked in account-id order (ORDER BY before the lock), like every posting.
_FLUSH = """
WITH parked AS (
    DELETE FROM pg_temp.deferred_balances RETURNING account_id, available, frozen
), per_account AS (
    SELECT account_id, sum(available) AS available, sum(frozen) AS frozen
      FROM parked GROUP BY account_id
), locked AS (
    SELECT a.account_id, p.available, p.frozen FROM accounts a
      JOIN per_account p ON p.account_id = a.account_id
     ORDER BY a.account_id
       FOR NO KEY UPDATE OF a
), changed AS (
    UPDATE accounts a SET available = a.available + l.available,
           frozen = a.frozen + l.frozen, total = a.total + l.available + l.frozen,
           updated_at = now()
      FROM locked l
     WHERE a.account_id = l.account_id AND a.frozen + l.frozen >= 0
       AND (a.available + l.available >= 0 OR a.may_go_negative)
    RETURNING a.account_id
)
SELECT (SELECT count(*) FROM per_account) AS wanted, (SELECT count(*) FROM changed) AS changed,
       (SELECT count(*) FROM locked l JOIN accounts a ON a.account_id = l.account_id
         WHERE a.frozen + l.frozen < 0) AS broken"""


async def available(conn: asyncpg.Connection, account_ids: Iterable[str]) -> dict[str, int]:
    """Each account's available balance net of this transaction's parked changes (no lock);
    0 for an account that does not exist."""
    await _TABLE.ensure(conn)
    ids = sorted(set(account_ids))
    found = {r["account_id"]: int(r["available"]) for r in await conn.fetch(_AVAILABLE, ids)}
    return {a: found.get(a, 0) for a in ids}


# Park the changes, and name the accounts whose frozen money they take below zero (counting
# what was parked before this statement): the caller raises, which undoes the park too.
_PARK_UNLESS_SHORT = """
WITH c AS (
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS c(account_id, available, frozen)
), parked AS (
    INSERT INTO pg_temp.deferred_balances (account_id, available, frozen)
    SELECT account_id, available, frozen FROM c
)
SELECT c.account_id
  FROM c
  LEFT JOIN accounts a ON a.account_id = c.account_id
 WHERE a.account_id IS NULL
    OR a.frozen + c.frozen + coalesce((SELECT sum(d.frozen) FROM pg_temp.deferred_balances d
                                        WHERE d.account_id = c.account_id), 0) < 0
 ORDER BY c.account_id"""


async def park_unless_short(
    conn: asyncpg.Connection, changes: dict[str, tuple[int, int]]
) -> list[str]:
    """Park (available, frozen) deltas per account until `flush`, in one statement with the
    check: the accounts (of `changes`) whose frozen money would go below zero. That is the
    holds and the balance disagreeing, never a race; the caller must raise, undoing the park."""
    if not changes:
        return []
    await _TABLE.ensure(conn)
    ids = sorted(changes)
    rows = await conn.fetch(
        _PARK_UNLESS_SHORT, ids, [changes[a][0] for a in ids], [changes[a][1] for a in ids]
    )
    return [r["account_id"] for r in rows]


async def park(conn: asyncpg.Connection, changes: dict[str, tuple[int, int]]) -> None:
    """Park (available, frozen) deltas per account until `flush`."""
    changes = {a: c for a, c in changes.items() if c != (0, 0)}
    if not changes:
        return
    await _TABLE.ensure(conn)
    ids = sorted(changes)
    await conn.execute(_PARK, ids, [changes[a][0] for a in ids], [changes[a][1] for a in ids])


async def flush(conn: asyncpg.Connection) -> int:
    """Apply every parked change, one update per account in account-id order; returns the
    accounts changed. Raises BalanceMoved when the money was taken meanwhile."""
    if not await _TABLE.exists(conn):
        return 0
    row = await conn.fetchrow(_FLUSH)
    assert row is not None
    if row["broken"]:
        raise PermanentError("frozen_below_zero", "releasing holds would take frozen below zero")
    if row["changed"] != row["wanted"]:
        raise BalanceMoved("a balance changed under this batch; running the batch again")
    return int(row["changed"])
