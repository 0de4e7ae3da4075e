"""Deferred credits (postings.post(defer=True) + flush_deferred) on a real Postgres:
credits reach the balances only at the flush, in the same transaction; a rolled-back
savepoint takes its credits along; a commit with credits still parked is refused; and the
runtime flushes through `Stage.before_commit` once per batch."""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import asyncpg
import pytest

from contracts.envelope import Envelope
from contracts.topics import ORDERS_SUBMITTED, Topic
from infra.settings import Settings
from tests.support.pipeline import assert_audit_clean, consumed, fund_wallet, order_submitted
from workers.ledger import accounts, postings
from workers.participants import funds
from workers.runtime.batch import run_batch
from workers.runtime.stage import Stage

pytestmark = pytest.mark.integration

FUNDED = 100_000


class _Undo(Exception):
    """Rolls a savepoint back."""


async def _setup(pool: asyncpg.Pool) -> tuple[str, str, str]:
    """A funded wallet and two merchant payables, all of this test's own."""
    uid = uuid.uuid4().hex[:8]
    buyer = f"buyer-defer-{uid}"
    await fund_wallet(pool, buyer, FUNDED, f"defer-topup:{buyer}")
    async with pool.acquire() as conn:
        a = await accounts.ensure(conn, accounts.merchant_payable(f"m-defer-{uid}-a", "EUR"))
        b = await accounts.ensure(conn, accounts.merchant_payable(f"m-defer-{uid}-b", "EUR"))
    return accounts.wallet(buyer, "EUR").account_id, a, b


async def _pay(
    conn: asyncpg.Connection, key: str, wallet: str, credits: list[tuple[str, int]]
) -> int | None:
    return await postings.post(
        conn,
        kind="correction",
        order_id=None,
        idempotency_key=key,
        currency="EUR",
        legs=[
            postings.Leg(wallet, acct, amount, f"test:{i}")
            for i, (acct, amount) in enumerate(credits)
        ],
        defer=True,
    )


async def _total(conn: asyncpg.Connection | asyncpg.Pool, account_id: str) -> int:
    row = await conn.fetchrow(
        "SELECT total, available FROM accounts WHERE account_id = $1", account_id
    )
    assert row is not None and row["total"] == row["available"], row
    return int(row["total"])


async def _posted(conn: asyncpg.Connection | asyncpg.Pool, key: str) -> bool:
    return bool(
        await conn.fetchval("SELECT 1 FROM ledger_transactions WHERE idempotency_key = $1", key)
    )


async def test_credits_reach_the_balances_at_the_flush(pool: asyncpg.Pool) -> None:
    wallet, a, b = await _setup(pool)
    key = f"defer:{a}"
    async with pool.acquire() as conn:
        async with conn.transaction():
            await _pay(conn, f"{key}:1", wallet, [(a, 3_000), (b, 500), (a, 200)])
            await _pay(conn, f"{key}:2", wallet, [(a, 1_000)])
            # Entries are written, the debit is applied, the credits are parked.
            entries = await conn.fetchval(
                """SELECT count(*) FROM ledger_entries e JOIN ledger_transactions t
                       USING (ledger_txn_id) WHERE t.idempotency_key LIKE $1 || '%'""",
                key,
            )
            assert entries == 4
            assert await _total(conn, wallet) == FUNDED - 4_700
            assert (await _total(conn, a), await _total(conn, b)) == (0, 0)

            assert await postings.flush_deferred(conn) == 2  # one update per account
            assert (await _total(conn, a), await _total(conn, b)) == (4_200, 500)
            assert await postings.flush_deferred(conn) == 0  # nothing parked any more
            assert (await _total(conn, a), await _total(conn, b)) == (4_200, 500)
        assert (await _total(conn, a), await _total(conn, b)) == (4_200, 500)
    await assert_audit_clean(pool)


async def test_a_rolled_back_savepoint_takes_its_credits_along(
    services: Settings, pool: asyncpg.Pool
) -> None:
    wallet, a, b = await _setup(pool)
    key = f"defer:{a}"
    # A fresh connection: the temp table is created inside the first savepoint, which is
    # rolled back, so the next posting must create it again.
    conn = await asyncpg.connect(services.dsn)
    try:
        async with conn.transaction():
            with pytest.raises(_Undo):
                async with conn.transaction():
                    await _pay(conn, f"{key}:0", wallet, [(a, 700)])
                    raise _Undo
            await _pay(conn, f"{key}:1", wallet, [(a, 1_000)])
            with pytest.raises(_Undo):
                async with conn.transaction():
                    await _pay(conn, f"{key}:2", wallet, [(a, 50), (b, 60)])
                    raise _Undo
            assert await postings.flush_deferred(conn) == 1
        assert (await _total(conn, a), await _total(conn, b)) == (1_000, 0)
        assert await _total(conn, wallet) == FUNDED - 1_000
        assert [await _posted(conn, f"{key}:{i}") for i in range(3)] == [False, True, False]
    finally:
        await conn.close()
    await assert_audit_clean(pool)


async def test_flush_with_nothing_parked_is_a_no_op(services: Settings, pool: asyncpg.Pool) -> None:
    wallet, a, _ = await _setup(pool)
    conn = await asyncpg.connect(services.dsn)
    try:
        assert await postings.flush_deferred(conn) == 0  # no table yet, no transaction
        async with conn.transaction():
            assert await postings.flush_deferred(conn) == 0
        async with conn.transaction():
            await _pay(conn, f"defer:{a}", wallet, [(a, 10)])
            assert await postings.flush_deferred(conn) == 1
        async with conn.transaction():  # the table exists and is empty
            assert await postings.flush_deferred(conn) == 0
        assert await _total(conn, a) == 10
    finally:
        await conn.close()
    await assert_audit_clean(pool)


async def test_a_commit_with_credits_still_parked_is_refused(
    services: Settings, pool: asyncpg.Pool
) -> None:
    wallet, a, _ = await _setup(pool)
    conn = await asyncpg.connect(services.dsn)
    try:
        with pytest.raises(asyncpg.RaiseError, match="not flushed"):
            async with conn.transaction():
                await _pay(conn, f"defer:{a}", wallet, [(a, 900)])
        # Nothing of it committed: no entries, no debit, no credit.
        assert not await _posted(conn, f"defer:{a}")
        assert (await _total(conn, wallet), await _total(conn, a)) == (FUNDED, 0)
        async with conn.transaction():
            assert await postings.flush_deferred(conn) == 0
    finally:
        await conn.close()
    await assert_audit_clean(pool)


async def test_a_credit_to_an_account_of_another_currency_is_refused_at_once(
    pool: asyncpg.Pool,
) -> None:
    wallet, a, _ = await _setup(pool)
    async with pool.acquire() as conn:
        usd = await accounts.ensure(conn, accounts.merchant_payable(f"{a}-usd", "USD"))
        async with conn.transaction():
            with pytest.raises(postings.LedgerError, match="does not exist"):
                async with conn.transaction():
                    await _pay(conn, f"defer:{usd}", wallet, [(usd, 100)])
            assert await postings.flush_deferred(conn) == 0
        assert await _total(conn, wallet) == FUNDED


async def test_debits_of_accounts_that_may_go_negative_are_parked_too(
    pool: asyncpg.Pool,
) -> None:
    # The gateway clearing account is debited by every card-paid order: as hot as a merchant.
    _, merchant, _ = await _setup(pool)
    async with pool.acquire() as conn:
        clearing = await accounts.ensure(conn, accounts.external("gateway_clearing", "EUR"))
        before = await _total(conn, clearing)
        async with conn.transaction():
            await postings.post(
                conn,
                kind="correction",
                order_id=None,
                idempotency_key=f"defer-neg:{uuid.uuid4().hex}",
                currency="EUR",
                legs=[postings.Leg(clearing, merchant, 700, "card")],
                defer=True,
            )
            assert await _total(conn, clearing) == before  # parked, not applied
            assert await postings.flush_deferred(conn) == 2
            assert await _total(conn, clearing) == before - 700
        assert await _total(conn, merchant) == 700
    await assert_audit_clean(pool)


async def test_the_runtime_flushes_once_per_batch_before_the_commit(pool: asyncpg.Pool) -> None:
    wallet, a, _ = await _setup(pool)
    uid = uuid.uuid4().hex[:8]
    poisoned = f"defer-{uid}-2"

    class Payee(Stage):
        """Credits `a` with 100 per event (deferred); one event fails after posting."""

        name: ClassVar[str] = f"test-deferred-{uid}"
        consumes: ClassVar[Topic] = ORDERS_SUBMITTED
        flushes: ClassVar[list[tuple[int, bool]]] = []

        async def handle(
            self, event: Envelope, tx: asyncpg.Connection, prepared: Any
        ) -> Sequence[Envelope]:
            await postings.post(
                tx,
                kind="correction",
                order_id=None,
                idempotency_key=f"{self.name}:{event.event_id}",
                currency="EUR",
                legs=[postings.Leg(wallet, a, 100, "test")],
                defer=True,
            )
            if event.correlation_id == poisoned:
                raise ValueError("poisoned after posting")
            return []

        async def before_commit(self, tx: asyncpg.Connection) -> None:
            self.flushes.append((await postings.flush_deferred(tx), tx.is_in_transaction()))

    events = [order_submitted(f"defer-{uid}-{i}", "b", {"sku-mug": 1}) for i in range(5)]
    records = [consumed(e, i) for i, e in enumerate(events)]
    records.append(consumed(events[0], len(records)))  # a duplicate within the batch

    stage = Payee()
    result = await run_batch(pool, stage, records, 1)
    assert (result.processed, result.duplicates, len(result.dead)) == (4, 1, 1)
    assert Payee.flushes == [(1, True)]
    assert await _total(pool, a) == 400  # the poisoned event's credit went with it
    assert await _total(pool, wallet) == FUNDED - 400

    again = await run_batch(pool, stage, records[:2], 1)  # redelivered: no second effect
    assert (again.processed, again.duplicates) == (0, 2)
    assert Payee.flushes == [(1, True), (0, True)]
    assert await _total(pool, a) == 400
    await assert_audit_clean(pool)


async def test_taking_more_frozen_money_than_is_held_is_refused_and_parks_nothing(
    pool: asyncpg.Pool,
) -> None:
    wallet, a, _ = await _setup(pool)
    gid = f"defer-frozen-{uuid.uuid4().hex[:8]}"
    later = datetime.now(UTC) + timedelta(hours=1)
    async with pool.acquire() as conn, conn.transaction():
        await funds.freeze(conn, gid, wallet, 300, "EUR", later)
    async with pool.acquire() as conn:
        async with conn.transaction():
            with pytest.raises(postings.LedgerError, match="frozen money of"):
                async with conn.transaction():  # the caller's savepoint (settlement's sale)
                    await postings.post(
                        conn,
                        kind="purchase",
                        order_id=gid,
                        idempotency_key=f"{gid}:sale",
                        currency="EUR",
                        legs=[postings.Leg(wallet, a, 500, "too much", debit_frozen=True)],
                        defer=True,
                    )
            assert await postings.flush_deferred(conn) == 0  # the park went with the savepoint
    row = await pool.fetchrow(
        "SELECT available, frozen FROM accounts WHERE account_id = $1", wallet
    )
    assert tuple(row) == (FUNDED - 300, 300)
    assert not await _posted(pool, f"{gid}:sale")
