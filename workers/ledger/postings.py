"""Posting balanced ledger transactions and applying them to balances.

Each entry moves `amount` from one debit account to one credit account, so every posting is
balanced by construction. Balances change by the net of all legs per account, applied in
account-id order (a fixed lock order: no deadlocks between concurrent postings); an account
whose legs net to zero (the order clearing account) is not touched at all, which keeps that
hot row out of every settlement.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg


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


async def post(
    conn: asyncpg.Connection,
    *,
    kind: str,
    order_id: str | None,
    idempotency_key: str,
    currency: str,
    legs: Sequence[Leg],
) -> int | None:
    """Post once per idempotency key; returns the ledger transaction id, None if already posted."""
    legs = [leg for leg in legs if leg.amount != 0]
    for leg in legs:
        if leg.amount < 0 or isinstance(leg.amount, bool):
            raise LedgerError(f"leg {leg.name}: amount must be a positive integer")
    txn_id: int | None = await conn.fetchval(
        """INSERT INTO ledger_transactions (kind, order_id, idempotency_key) VALUES ($1, $2, $3)
           ON CONFLICT (idempotency_key) DO NOTHING RETURNING ledger_txn_id""",
        kind,
        order_id,
        idempotency_key,
    )
    if txn_id is None:
        return None
    await conn.executemany(
        """INSERT INTO ledger_entries (ledger_txn_id, debit_account_id, credit_account_id,
                                       amount, currency, leg)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        [(txn_id, leg.debit, leg.credit, leg.amount, currency, leg.name) for leg in legs],
    )
    available: dict[str, int] = defaultdict(int)
    frozen: dict[str, int] = defaultdict(int)
    for leg in legs:
        (frozen if leg.debit_frozen else available)[leg.debit] -= leg.amount
        available[leg.credit] += leg.amount
    for account_id in sorted(set(available) | set(frozen)):
        da, df = available[account_id], frozen[account_id]
        if da == 0 and df == 0:
            continue
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
    return txn_id
