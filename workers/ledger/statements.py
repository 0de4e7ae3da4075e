"""Account statements: an account's entries with their running balance over a period.

The balance is rebuilt from the entries alone; the statement says whether it matches the
stored balance (it always must: `payflow audit` checks the same for every account).
"""

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class Line:
    entry_id: int
    at: datetime
    kind: str
    order_id: str | None
    leg: str
    counterparty: str
    amount: int  # signed: credits add to the balance, debits take from it
    balance: int  # running balance after this entry


@dataclass(frozen=True)
class Statement:
    account_id: str
    currency: str
    since: datetime | None
    until: datetime | None
    opening: int
    lines: list[Line]
    closing: int
    stored_total: int
    rebuilt_total: int

    @property
    def consistent(self) -> bool:
        return self.stored_total == self.rebuilt_total


class UnknownAccount(LookupError):
    pass


_SIGNED = """
    SELECT e.entry_id, e.created_at, t.kind, t.order_id, e.leg,
           CASE WHEN e.credit_account_id = $1 THEN e.debit_account_id
                ELSE e.credit_account_id END AS counterparty,
           CASE WHEN e.credit_account_id = $1 THEN e.amount ELSE -e.amount END AS amount
    FROM ledger_entries e JOIN ledger_transactions t USING (ledger_txn_id)
    WHERE (e.credit_account_id = $1 OR e.debit_account_id = $1)
"""


async def statement(
    conn: asyncpg.Connection,
    account_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Statement:
    account = await conn.fetchrow(
        "SELECT currency, total FROM accounts WHERE account_id = $1", account_id
    )
    if account is None:
        raise UnknownAccount(f"no account {account_id!r}")
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        opening = (
            await conn.fetchval(
                f"SELECT coalesce(sum(amount), 0) FROM ({_SIGNED}) s WHERE created_at < $2",
                account_id,
                since,
            )
            if since is not None
            else 0
        )
        rows = await conn.fetch(
            f"""SELECT * FROM ({_SIGNED}) s
                WHERE ($2::timestamptz IS NULL OR created_at >= $2)
                  AND ($3::timestamptz IS NULL OR created_at < $3)
                ORDER BY entry_id""",
            account_id,
            since,
            until,
        )
        rebuilt = await conn.fetchval(
            f"SELECT coalesce(sum(amount), 0) FROM ({_SIGNED}) s", account_id
        )
        stored = await conn.fetchval("SELECT total FROM accounts WHERE account_id = $1", account_id)
    balance = opening_balance = int(opening)
    lines = []
    for r in rows:
        balance += r["amount"]
        lines.append(
            Line(
                r["entry_id"],
                r["created_at"],
                r["kind"],
                r["order_id"],
                r["leg"],
                r["counterparty"],
                r["amount"],
                balance,
            )
        )
    return Statement(
        account_id,
        account["currency"],
        since,
        until,
        opening_balance,
        lines,
        balance,
        int(stored),
        int(rebuilt),
    )
