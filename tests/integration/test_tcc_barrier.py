"""The TCC pitfalls on the funds participant, against the real database."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tests.support.pipeline import assert_audit_clean, balances, eventually, fund_wallet
from workers.ledger import accounts, postings
from workers.ledger.postings import Leg
from workers.participants import funds
from workers.tcc.barrier import Phase, Verdict, enter

pytestmark = pytest.mark.integration
LATER = datetime.now(UTC) + timedelta(hours=1)


async def _wallet(pool: asyncpg.Pool, amount: int) -> tuple[str, str]:
    buyer = f"b-{uuid.uuid4().hex[:10]}"
    await fund_wallet(pool, buyer, amount, f"test-topup:{buyer}")
    return buyer, accounts.wallet(buyer, "EUR").account_id


async def _freeze(
    pool: asyncpg.Pool, gid: str, account: str, amount: int, expires_at: datetime = LATER
) -> Verdict:
    async with pool.acquire() as conn, conn.transaction():
        return (await funds.freeze(conn, gid, account, amount, "EUR", expires_at)).verdict


async def _confirm(pool: asyncpg.Pool, gid: str) -> Verdict:
    async with pool.acquire() as conn, conn.transaction():
        entry, held = await funds.confirm(conn, gid)
        # What settlement does with a confirmed hold: the money leaves `frozen` by a posting.
        clearing = await accounts.ensure(conn, accounts.platform("order_clearing", "EUR"))
        legs = [Leg(h.account_id, clearing, h.amount, "test", debit_frozen=True) for h in held]
        await postings.post(
            conn,
            kind="purchase",
            order_id=gid,
            idempotency_key=f"test:{gid}",
            currency="EUR",
            legs=legs,
        )
        return entry.verdict


async def _cancel(pool: asyncpg.Pool, gid: str) -> Verdict:
    async with pool.acquire() as conn, conn.transaction():
        return (await funds.cancel(conn, gid)).verdict


def _gid() -> str:
    return f"o-{uuid.uuid4().hex[:12]}"


async def test_duplicate_try_freezes_once(pool: asyncpg.Pool) -> None:
    _, wallet = await _wallet(pool, 10_000)
    gid = _gid()
    assert await _freeze(pool, gid, wallet, 3_000) is Verdict.APPLY
    assert await _freeze(pool, gid, wallet, 3_000) is Verdict.DUPLICATE
    assert await balances(pool, wallet) == (10_000, 7_000, 3_000)


async def test_cancel_without_try_is_empty_and_refuses_the_late_try(pool: asyncpg.Pool) -> None:
    _, wallet = await _wallet(pool, 10_000)
    gid = _gid()
    assert await _cancel(pool, gid) is Verdict.EMPTY_CANCEL
    # The Try that arrives after its Cancel must not freeze money nobody will ever release.
    assert await _freeze(pool, gid, wallet, 3_000) is Verdict.REFUSED
    assert await _cancel(pool, gid) is Verdict.DUPLICATE
    assert await balances(pool, wallet) == (10_000, 10_000, 0)


async def test_cancel_restores_exactly_what_was_held(pool: asyncpg.Pool) -> None:
    _, wallet = await _wallet(pool, 10_000)
    gid = _gid()
    await _freeze(pool, gid, wallet, 4_321)
    assert await _cancel(pool, gid) is Verdict.APPLY
    assert await _cancel(pool, gid) is Verdict.DUPLICATE
    assert await balances(pool, wallet) == (10_000, 10_000, 0)


async def test_confirm_after_cancel_is_refused(pool: asyncpg.Pool) -> None:
    _, wallet = await _wallet(pool, 10_000)
    gid = _gid()
    await _freeze(pool, gid, wallet, 2_000)
    await _cancel(pool, gid)
    assert await _confirm(pool, gid) is Verdict.REFUSED
    assert await balances(pool, wallet) == (10_000, 10_000, 0)


async def test_cancel_after_confirm_is_refused(pool: asyncpg.Pool) -> None:
    _, wallet = await _wallet(pool, 10_000)
    gid = _gid()
    await _freeze(pool, gid, wallet, 2_000)
    assert await _confirm(pool, gid) is Verdict.APPLY
    assert await _confirm(pool, gid) is Verdict.DUPLICATE
    assert await _cancel(pool, gid) is Verdict.REFUSED
    assert await balances(pool, wallet) == (8_000, 8_000, 0)


async def test_confirm_without_try_is_refused(pool: asyncpg.Pool) -> None:
    assert await _confirm(pool, _gid()) is Verdict.REFUSED


async def test_expired_hold_can_only_be_cancelled(pool: asyncpg.Pool) -> None:
    _, wallet = await _wallet(pool, 10_000)
    gid = _gid()
    await _freeze(pool, gid, wallet, 2_000, datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(funds.HoldExpired):
        await _confirm(pool, gid)
    assert await _cancel(pool, gid) is Verdict.APPLY
    assert await balances(pool, wallet) == (10_000, 10_000, 0)


async def test_racing_confirm_and_cancel_apply_exactly_one(pool: asyncpg.Pool) -> None:
    for _ in range(20):
        _, wallet = await _wallet(pool, 1_000)
        gid = _gid()
        await _freeze(pool, gid, wallet, 1_000)
        results = await asyncio.gather(_confirm(pool, gid), _cancel(pool, gid))
        assert sorted(results) == sorted([Verdict.APPLY, Verdict.REFUSED])
        total, available, frozen = await balances(pool, wallet)
        assert frozen == 0
        assert (total, available) in ((0, 0), (1_000, 1_000))


async def test_a_thousand_concurrent_freezes_never_overdraw(pool: asyncpg.Pool) -> None:
    _, wallet = await _wallet(pool, 100_000)
    gids = [_gid() for _ in range(1_000)]

    async def attempt(gid: str) -> bool:
        try:
            return await _freeze(pool, gid, wallet, 250) is Verdict.APPLY
        except funds.InsufficientFunds:
            return False

    results = await asyncio.gather(*(attempt(g) for g in gids))
    assert sum(results) == 400  # exactly the affordable ones
    assert await balances(pool, wallet) == (100_000, 0, 100_000)
    await assert_audit_clean(pool)


async def _enter_after(pool: asyncpg.Pool, gid: str, first: Phase, then: Phase) -> Verdict:
    """`first` in a transaction still open while `then` starts on another connection; the
    first commits only once the second is waiting on it. What `then` decides."""
    async with pool.acquire() as a, pool.acquire() as b:
        tx = a.transaction()
        await tx.start()
        await enter(a, gid, "coupons", first)
        second = asyncio.create_task(_in_tx(b, gid, then))
        await eventually(lambda: _waiting(pool, b), 10, f"{then.value} waits for {first.value}")
        await tx.commit()
        return await second


async def _in_tx(conn: asyncpg.Connection, gid: str, phase: Phase) -> Verdict:
    async with conn.transaction():
        return (await enter(conn, gid, "coupons", phase)).verdict


async def _waiting(pool: asyncpg.Pool, conn: asyncpg.Connection) -> bool:
    pid = conn.get_server_pid()
    return bool(
        await pool.fetchval(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid
        )
    )


async def test_a_confirm_that_started_before_a_cancel_committed_is_refused(
    pool: asyncpg.Pool,
) -> None:
    # The Confirm's snapshot cannot see the Cancel; the unique index can, and waits for it.
    for first, then in ((Phase.CANCEL, Phase.CONFIRM), (Phase.CONFIRM, Phase.CANCEL)):
        gid = _gid()
        async with pool.acquire() as conn, conn.transaction():
            assert (await enter(conn, gid, "coupons", Phase.TRY)).verdict is Verdict.APPLY
        assert await _enter_after(pool, gid, first, then) is Verdict.REFUSED
        phases = await pool.fetch("SELECT phase FROM tcc_barrier WHERE gid = $1", gid)
        assert sorted(r["phase"] for r in phases) == sorted(["try", first.value])


async def test_a_cancel_that_waited_for_its_try_applies_it(pool: asyncpg.Pool) -> None:
    # The Try commits after the Cancel began: the Cancel is neither empty nor lost.
    gid = _gid()
    assert await _enter_after(pool, gid, Phase.TRY, Phase.CANCEL) is Verdict.APPLY
    rows = await pool.fetch(
        "SELECT phase, origin FROM tcc_barrier WHERE gid = $1 ORDER BY phase", gid
    )
    assert [tuple(r) for r in rows] == [("cancel", "applied"), ("try", "applied")]
