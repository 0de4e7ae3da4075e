"""Posting balanced ledger transactions and applying them to balances.

Each entry moves `amount` from one debit account to one credit account, so every posting is
balanced by construction. Balances change by the net of all legs per account, applied in
account-id order (a fixed lock order: no deadlocks between concurrent postings); an account
whose legs net to zero (the order clearing account) is not touched at all, which keeps that
hot row out of every settlement.

Hot accounts (docs/hot-accounts.md). A merchant's payable and the fee account are credited
by every settlement; updating them per posting would lock them from a batch's first order
to its commit and serialise every settlement replica behind one merchant; the same holds
for the gateway clearing and coupon subsidy accounts, debited by every such order. With
`defer`, a change no constraint can refuse (a pure credit, or any change to an account that
may go negative) is parked in a per-connection temp table instead, and `flush_deferred`
applies them all with one update per account just before the transaction commits. Because
the parked rows are in the same transaction:
- a rolled-back savepoint takes its credits along with its entries;
- a commit with credits still parked is refused (a deferred trigger), so balances and
  entries agree at every commit and the audit's snapshot never sees one without the other.
Debits of accounts that may not go negative, and anything touching frozen money, are applied
at once: they need the checks. Such a debit does not see credits parked earlier in the same
transaction (it can be refused wrongly, never overdraw).
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

import asyncpg

from workers.ledger import deferred_balances
from workers.runtime import temp_tables


@dataclass(frozen=True)
class Leg:
    debit: str
    credit: str
    amount: int
    name: str
    # The debit comes out of money frozen for this purpose (a confirmed hold), not available.
    debit_frozen: bool = False


class LedgerError(ValueError):
    pass


_TABLE = temp_tables.register(
    "deferred_credits",
    "account_id text NOT NULL, currency char(3) NOT NULL, amount bigint NOT NULL CHECK (amount <> 0)",
    "postings.flush_deferred",
)

# Joined with `accounts` so that an unknown account (or one in another currency) is found
# now, inside the event's savepoint, rather than at the flush, which would fail the batch.
_PARK = """
INSERT INTO pg_temp.deferred_credits (account_id, currency, amount)
SELECT a.account_id, a.currency, c.amount
  FROM unnest($1::text[], $2::bigint[]) AS c(account_id, amount)
  JOIN accounts a ON a.account_id = c.account_id AND a.currency = $3
 WHERE c.amount > 0 OR a.may_go_negative
RETURNING account_id"""

# Rows are locked in account-id order (ORDER BY before FOR UPDATE), like every posting.
_FLUSH = """
WITH parked AS (
    DELETE FROM pg_temp.deferred_credits RETURNING account_id, currency, amount
), per_account AS (
    SELECT account_id, currency, sum(amount) AS amount FROM parked
     GROUP BY account_id, currency
), locked AS (
    SELECT a.account_id, p.amount FROM accounts a
      JOIN per_account p ON p.account_id = a.account_id AND p.currency = a.currency
     ORDER BY a.account_id
       FOR NO KEY UPDATE OF a
)
UPDATE accounts a SET available = a.available + l.amount, total = a.total + l.amount,
       updated_at = now()
  FROM locked l
 WHERE a.account_id = l.account_id"""


# The transactions and their entries in one statement; none for a key posted before.
_POST = """
WITH t AS (
    INSERT INTO ledger_transactions (kind, order_id, idempotency_key)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ORDER BY 3
    ON CONFLICT (idempotency_key) DO NOTHING RETURNING ledger_txn_id, idempotency_key),
e AS (
    INSERT INTO ledger_entries (ledger_txn_id, debit_account_id, credit_account_id, amount,
                                currency, leg)
    SELECT t.ledger_txn_id, u.d, u.c, u.a, u.cur, u.n
      FROM unnest($4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[])
           WITH ORDINALITY AS u(k, d, c, a, cur, n, i)
      JOIN t ON t.idempotency_key = u.k
     ORDER BY u.i)
SELECT idempotency_key, ledger_txn_id FROM t"""


@dataclass(frozen=True)
class Posting:
    kind: str
    order_id: str | None
    idempotency_key: str
    currency: str
    legs: Sequence[Leg]


async def post(
    conn: asyncpg.Connection,
    *,
    kind: str,
    order_id: str | None,
    idempotency_key: str,
    currency: str,
    legs: Sequence[Leg],
    defer: bool = False,
) -> int | None:
    """Post once per idempotency key; returns the ledger transaction id, None if already posted.

    With `defer`, changes no constraint can refuse reach `accounts` only at `flush_deferred`,
    which the caller must run in the same transaction before it commits (or the commit fails).
    """
    posting = Posting(kind, order_id, idempotency_key, currency, legs)
    return (await post_many(conn, [posting], defer=defer)).get(idempotency_key)


async def post_many(
    conn: asyncpg.Connection, postings: Sequence[Posting], *, defer: bool = False
) -> dict[str, int]:
    """`post` for many postings: one statement for their transactions and entries, then
    their balance changes summed per account. Returns the ledger transaction id of each
    posted now, by idempotency key (a key posted before, or twice here, is posted once)."""
    wanted: dict[str, Posting] = {}
    for p in postings:
        legs = [leg for leg in p.legs if leg.amount != 0]
        for leg in legs:
            if leg.amount < 0 or isinstance(leg.amount, bool):
                raise LedgerError(f"leg {leg.name}: amount must be a positive integer")
        wanted.setdefault(p.idempotency_key, replace(p, legs=legs))
    if not wanted:
        return {}
    ps = list(wanted.values())
    entries = [(p, leg) for p in ps for leg in p.legs]
    rows = await conn.fetch(
        _POST,
        [p.kind for p in ps],
        [p.order_id for p in ps],
        [p.idempotency_key for p in ps],
        [p.idempotency_key for p, _ in entries],
        [leg.debit for _, leg in entries],
        [leg.credit for _, leg in entries],
        [leg.amount for _, leg in entries],
        [p.currency for p, _ in entries],
        [leg.name for _, leg in entries],
    )
    posted: dict[str, int] = {r["idempotency_key"]: r["ledger_txn_id"] for r in rows}
    per_currency: dict[str, list[Leg]] = defaultdict(list)
    for p in ps:
        if p.idempotency_key in posted:
            per_currency[p.currency].extend(p.legs)
    for currency in sorted(per_currency):
        await _apply(conn, currency, per_currency[currency], defer)
    return posted


async def _apply(conn: asyncpg.Connection, currency: str, legs: list[Leg], defer: bool) -> None:
    """The legs' net change per account: parked with `defer` where it may be, else at once."""
    available: dict[str, int] = defaultdict(int)
    frozen: dict[str, int] = defaultdict(int)
    for leg in legs:
        (frozen if leg.debit_frozen else available)[leg.debit] -= leg.amount
        available[leg.credit] += leg.amount
    deltas = {
        account_id: (available[account_id], frozen[account_id])
        for account_id in set(available) | set(frozen)
        if available[account_id] or frozen[account_id]
    }
    parked: set[str] = set()
    if defer:
        parked = await _park(conn, currency, {a: da for a, (da, df) in deltas.items() if not df})
        # Money leaving `frozen` (a wallet paying for its order) waits with the wallet's
        # other changes of the batch; the flush refuses frozen below zero.
        leaving = {a: d for a, d in deltas.items() if d[1]}
        short = await deferred_balances.park_unless_short(conn, leaving)
        if short:  # raised, so the attempt (or the savepoint) takes the park back too
            raise LedgerError(f"frozen money of {', '.join(short)} is less than this posting takes")
        parked |= leaving.keys()
    for account_id in sorted(deltas.keys() - parked):
        da, df = deltas[account_id]
        status = await conn.execute(
            """UPDATE accounts SET available = available + $2, frozen = frozen + $3,
                   total = total + $2 + $3, updated_at = now()
               WHERE account_id = $1 AND currency = $4""",
            account_id,
            da,
            df,
            currency,
        )
        if status != "UPDATE 1":
            raise LedgerError(f"account {account_id} ({currency}) does not exist")


async def _park(conn: asyncpg.Connection, currency: str, changes: dict[str, int]) -> set[str]:
    """Park what no constraint can refuse; return those accounts (the rest apply at once)."""
    if not changes:
        return set()
    await _TABLE.ensure(conn)
    rows = await conn.fetch(_PARK, list(changes), list(changes.values()), currency)
    return {r["account_id"] for r in rows}


async def flush_deferred(conn: asyncpg.Connection) -> int:
    """Apply every change parked in this transaction, one update per account, and empty the
    tables; returns how many credited accounts changed. A no-op when nothing was parked.
    Wallets (buyer:...) go first, then the credits: account-id order overall."""
    await deferred_balances.flush(conn)
    if not await _TABLE.exists(conn):
        return 0
    status: str = await conn.execute(_FLUSH)
    return int(status.split()[-1])
