"""Which accounts a process remembers as existing (workers.ledger.accounts.ensure), on a real
Postgres: one committed by another transaction, even updated a moment ago while other
transactions run (a hot account); never one this transaction wrote, in itself or in a
savepoint, since it may yet roll back."""

import uuid

import asyncpg
import pytest

from workers.ledger import accounts

pytestmark = pytest.mark.integration


def _ref(tag: str) -> accounts.AccountRef:
    return accounts.merchant_payable(f"m-cache-{tag}-{uuid.uuid4().hex[:8]}", "EUR")


def _remembered(conn: asyncpg.Connection, ref: accounts.AccountRef) -> bool:
    return accounts._key(conn, ref.account_id) in accounts._known


async def _write_something(conn: asyncpg.Connection) -> None:
    """Gives the open transaction its xid, as a batch's inbox insert does."""
    await conn.execute("SELECT pg_current_xact_id()")


async def _touch(conn: asyncpg.Connection, ref: accounts.AccountRef) -> None:
    """An update committed by another transaction: the row's xmin is now recent."""
    await conn.execute(
        "UPDATE accounts SET updated_at = now() WHERE account_id = $1", ref.account_id
    )


async def test_a_hot_account_is_remembered_while_other_transactions_run(
    pool: asyncpg.Pool,
) -> None:
    ref = _ref("hot")
    async with pool.acquire() as other, pool.acquire() as older, pool.acquire() as conn:
        await accounts.ensure(other, ref)  # created and committed by another transaction
        # A transaction that began before the next update and is still running (another
        # stage's batch): before, it kept every later update "too young" to remember.
        async with older.transaction():
            await _write_something(older)
            await _touch(other, ref)
            async with conn.transaction():
                await _write_something(conn)
                assert await accounts.ensure(conn, ref) == ref.account_id
                assert _remembered(conn, ref)


async def test_an_account_this_transaction_created_is_not_remembered_until_seen_committed(
    pool: asyncpg.Pool,
) -> None:
    ref = _ref("own")
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await _write_something(conn)
        await accounts.ensure(conn, ref)  # inserted here
        await accounts.ensure(conn, ref)  # found here: its own row
        assert not _remembered(conn, ref)
        await tx.rollback()
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM accounts WHERE account_id = $1", ref.account_id
            )
            == 0
        )
        # The next transaction finds it missing, creates it, and once that is committed a
        # later one remembers it.
        async with conn.transaction():
            await accounts.ensure(conn, ref)
        async with conn.transaction():
            await _write_something(conn)
            await accounts.ensure(conn, ref)
        assert _remembered(conn, ref)


async def test_an_account_created_in_a_savepoint_that_rolls_back_is_not_remembered(
    pool: asyncpg.Pool,
) -> None:
    """A savepoint's xid is newer than its transaction's: a batch that bisects a failing
    event undoes that event's savepoint, accounts it created included, and commits."""
    ref = _ref("savepoint")
    async with pool.acquire() as conn:
        async with conn.transaction():
            await _write_something(conn)
            sp = conn.transaction()
            await sp.start()
            await accounts.ensure(conn, ref)
            await accounts.ensure(conn, ref)
            await sp.rollback()
        assert not _remembered(conn, ref)
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM accounts WHERE account_id = $1", ref.account_id
            )
            == 0
        )


async def test_an_account_committed_after_this_transaction_took_its_xid_waits_a_batch(
    pool: asyncpg.Pool,
) -> None:
    """Newer than this transaction's xid reads as "maybe ours": not remembered yet (a wrong
    "no" costs one lookup), remembered by the next transaction."""
    ref = _ref("newer")
    async with pool.acquire() as other, pool.acquire() as conn:
        async with conn.transaction():
            await _write_something(conn)
            await accounts.ensure(other, ref)  # committed by another, after our xid
            await accounts.ensure(conn, ref)
            assert not _remembered(conn, ref)
        async with conn.transaction():
            await accounts.ensure(conn, ref)  # nothing written yet: it can only be committed
        assert _remembered(conn, ref)
