"""Accounts: one per (owner, purpose, currency), created on first use.

Accounts are never deleted, so one seen committed stays: each process remembers the ones
it has seen committed (per database) and stops asking. A row this transaction can see was
committed by another transaction or written by this one; only the second may yet roll back
(with the transaction, or with one of its savepoints). So a row is remembered when this
transaction has written nothing yet, or when the row's xmin is older than this
transaction's own xid (its savepoints' xids are all newer than it).
"""

from dataclasses import dataclass
from functools import cached_property

import asyncpg

# Accounts that mirror money outside payflow (owed by a gateway, paid in from outside) have
# the negative image of what came in as their balance; the coupon subsidy account's negative
# balance is what the platform has spent on its coupons, the gateway fee account's what it
# paid the gateway (reconciliation). Only these may go below zero.
_MAY_GO_NEGATIVE = {
    "gateway_clearing",
    "funding",
    "payouts",
    "coupon_subsidy",
    "gateway_fees",
    "gateway_settlements",
}


@dataclass(frozen=True)
class AccountRef:
    owner_kind: str
    owner_id: str
    purpose: str
    currency: str

    @cached_property  # asked for several times per posting leg
    def account_id(self) -> str:
        return f"{self.owner_kind}:{self.owner_id}:{self.purpose}:{self.currency}"


def wallet(buyer_id: str, currency: str) -> AccountRef:
    return AccountRef("buyer", buyer_id, "wallet", currency)


def merchant_payable(merchant_id: str, currency: str) -> AccountRef:
    return AccountRef("merchant", merchant_id, "payable", currency)


def platform(purpose: str, currency: str) -> AccountRef:
    return AccountRef("platform", "payflow", purpose, currency)


def external(purpose: str, currency: str) -> AccountRef:
    return AccountRef("external", "world", purpose, currency)


# (server address, database, account id) of accounts known to exist.
_known: set[tuple[object, object, str]] = set()

# Whether the row was committed by another transaction. Ages are compared, not xids: both
# count back from the same reference, so the 32-bit counter's wraparound cannot reorder
# them. A row committed by another transaction after this one took its xid reads as newer
# and is not remembered yet: a wrong "no" only costs a lookup at the next batch. (Before,
# a row counted only once older than every running transaction: a hot account, updated by
# every batch while other stages' transactions ran, was looked up again batch after batch.)
_LOOK = """
SELECT pg_current_xact_id_if_assigned() IS NULL
       OR age(xmin) > age(pg_current_xact_id_if_assigned()::xid)
  FROM accounts WHERE account_id = $1"""


def _key(conn: asyncpg.Connection, account_id: str) -> tuple[object, object, str]:
    # The address as asyncpg holds it (a (host, port) tuple or a socket path): hashed as it
    # is, since formatting it on every call cost more than the rest of a known account's check.
    params = getattr(conn, "_params", None)
    return (getattr(conn, "_addr", None), getattr(params, "database", None), account_id)


async def ensure(conn: asyncpg.Connection, ref: AccountRef) -> str:
    key = _key(conn, ref.account_id)
    if key in _known:
        return ref.account_id
    # Look first: an INSERT ... ON CONFLICT on an existing row waits for any transaction
    # updating that row, which would queue every settlement on a hot account.
    settled = await conn.fetchval(_LOOK, ref.account_id)
    if settled is not None:
        if settled:
            _known.add(key)
        return ref.account_id
    await conn.execute(
        """INSERT INTO accounts (account_id, owner_kind, owner_id, purpose, currency,
                                 may_go_negative)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id) DO NOTHING""",
        ref.account_id,
        ref.owner_kind,
        ref.owner_id,
        ref.purpose,
        ref.currency,
        ref.purpose in _MAY_GO_NEGATIVE,
    )
    return ref.account_id


async def available(conn: asyncpg.Connection, account_id: str, *, lock: bool = False) -> int:
    sql = "SELECT available FROM accounts WHERE account_id = $1" + (
        " FOR NO KEY UPDATE" if lock else ""
    )
    value = await conn.fetchval(sql, account_id)
    return int(value or 0)
