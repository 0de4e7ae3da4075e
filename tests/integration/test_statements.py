"""Statements list an account's entries with a running balance that rebuilds the stored one."""

import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from tests.support.pipeline import fund_wallet
from workers.ledger import accounts, postings
from workers.ledger.statements import UnknownAccount, statement

pytestmark = pytest.mark.integration


async def test_running_balance_and_period(pool: asyncpg.Pool) -> None:
    buyer = f"b-stmt-{uuid.uuid4().hex[:8]}"
    await fund_wallet(pool, buyer, 10_000, f"stmt-1:{buyer}")
    wallet = accounts.wallet(buyer, "EUR").account_id
    async with pool.acquire() as conn:
        middle = await conn.fetchval("SELECT clock_timestamp()")
    await fund_wallet(pool, buyer, 2_500, f"stmt-2:{buyer}")
    async with pool.acquire() as conn, conn.transaction():
        merchant = await accounts.ensure(conn, accounts.merchant_payable("m-stmt", "EUR"))
        await postings.post(
            conn,
            kind="correction",
            order_id=None,
            idempotency_key=f"stmt-3:{buyer}",
            currency="EUR",
            legs=[postings.Leg(wallet, merchant, 4_000, "test_payment")],
        )

    async with pool.acquire() as conn:
        whole = await statement(conn, wallet)
        recent = await statement(conn, wallet, since=middle, until=datetime.now(UTC))
    assert [line.amount for line in whole.lines] == [10_000, 2_500, -4_000]
    assert [line.balance for line in whole.lines] == [10_000, 12_500, 8_500]
    assert whole.closing == whole.stored_total == whole.rebuilt_total == 8_500
    assert whole.consistent
    assert recent.opening == 10_000
    assert [line.amount for line in recent.lines] == [2_500, -4_000]
    assert recent.closing == 8_500
    assert recent.lines[-1].counterparty == merchant


async def test_unknown_account_is_named(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(UnknownAccount, match="no account 'nobody'"):
            await statement(conn, "nobody")
