"""Accounts: one per (owner, purpose, currency), created on first use."""

from dataclasses import dataclass

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

    @property
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


async def ensure(conn: asyncpg.Connection, ref: AccountRef) -> str:
    # Look first: an INSERT ... ON CONFLICT on an existing row waits for any transaction
    # updating that row, which would queue every settlement on a hot account.
    if await conn.fetchval("SELECT 1 FROM accounts WHERE account_id = $1", ref.account_id):
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
    sql = "SELECT available FROM accounts WHERE account_id = $1" + (" FOR UPDATE" if lock else "")
    value = await conn.fetchval(sql, account_id)
    return int(value or 0)
