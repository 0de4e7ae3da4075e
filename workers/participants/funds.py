"""Fund holds: the funds participant of TCC (freeze, then confirm or cancel)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from workers.ledger import deferred_balances
from workers.tcc import barrier
from workers.tcc.barrier import Entry, Phase, enter, try_many

BRANCH = "funds"
# A hold outlives the payment window by this much, so a payment made in time is never
# refused for an expired hold, and the sweeper has time to cancel an unpaid order itself.
HOLD_MARGIN_S = 300.0


def hold_expires_at(frozen_at: datetime, window_s: float) -> datetime:
    return frozen_at + timedelta(seconds=window_s + HOLD_MARGIN_S)


class InsufficientFunds(Exception):
    def __init__(self, account_id: str, wanted: int) -> None:
        super().__init__(f"{account_id} cannot freeze {wanted}")
        self.account_id, self.wanted = account_id, wanted


@dataclass(frozen=True)
class Held:
    account_id: str
    amount: int


async def freeze(
    conn: asyncpg.Connection,
    order_id: str,
    account_id: str,
    amount: int,
    currency: str,
    expires_at: datetime,
) -> Entry:
    """Try. Raises InsufficientFunds; run it in a savepoint so the barrier row goes too."""
    entry = await enter(conn, order_id, BRANCH, Phase.TRY)
    if not entry.apply or amount == 0:
        return entry
    # Conditional update, no read-then-write: concurrent freezes can never overdraw.
    status = await conn.execute(
        """UPDATE accounts SET available = available - $2, frozen = frozen + $2,
               updated_at = now()
           WHERE account_id = $1 AND available >= $2""",
        account_id,
        amount,
    )
    if status != "UPDATE 1":
        raise InsufficientFunds(account_id, amount)
    await _record_holds(conn, [HoldRequest(order_id, account_id, amount, currency, expires_at)])
    return entry


@dataclass(frozen=True)
class HoldRequest:
    order_id: str
    account_id: str
    amount: int
    currency: str
    expires_at: datetime


async def freeze_parked(conn: asyncpg.Connection, holds: list[HoldRequest]) -> dict[str, Entry]:
    """Try for many orders (one hold each) in three statements. The wallets change at
    `deferred_balances.flush`, which refuses an overdraft: the caller planned the amounts
    from `deferred_balances.available`. Only a Try that applies holds anything."""
    entries = await try_many(conn, [h.order_id for h in holds], BRANCH)
    held = [h for h in holds if entries[h.order_id].apply and h.amount > 0]
    if not held:
        return entries
    changes: dict[str, tuple[int, int]] = {}
    for h in held:
        a, f = changes.get(h.account_id, (0, 0))
        changes[h.account_id] = (a - h.amount, f + h.amount)
    await deferred_balances.park(conn, changes)
    await _record_holds(conn, held)
    return entries


async def _record_holds(conn: asyncpg.Connection, holds: list[HoldRequest]) -> None:
    await conn.execute(
        """INSERT INTO fund_holds (order_id, account_id, amount, currency, state, expires_at)
           SELECT o, a, amount, cur, 'held', expires
             FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::timestamptz[])
                  AS u(o, a, amount, cur, expires)""",
        [h.order_id for h in holds],
        [h.account_id for h in holds],
        [h.amount for h in holds],
        [h.currency for h in holds],
        [h.expires_at for h in holds],
    )


class HoldExpired(Exception):
    pass


async def expired_holds(conn: asyncpg.Connection, order_ids: list[str]) -> set[str]:
    """The orders (of these) with a hold still held past its deadline."""
    rows = await conn.fetch(
        """SELECT DISTINCT order_id FROM fund_holds
           WHERE order_id = ANY($1::text[]) AND state = 'held' AND expires_at <= now()""",
        order_ids,
    )
    return {r["order_id"] for r in rows}


async def confirm(
    conn: asyncpg.Connection, order_id: str, *, expired: bool | None = None
) -> tuple[Entry, list[Held]]:
    """Confirm: mark the holds confirmed; raises HoldExpired (having written nothing) when a
    hold is past its deadline (`expired`, when the caller read it already for its batch).
    The caller posts the ledger legs that take the money out of `frozen`
    (postings.Leg.debit_frozen) in the same transaction."""
    # Before the barrier, so a refusal writes nothing (no savepoint needed): a hold still
    # 'held' means no Confirm or Cancel ran, so the barrier would have let this one in.
    if expired is None:
        expired = order_id in await expired_holds(conn, [order_id])
    if expired:
        raise HoldExpired(order_id)  # past its deadline only Cancel is possible
    entry = await enter(conn, order_id, BRANCH, Phase.CONFIRM)
    if not entry.apply:
        return entry, []
    return entry, (await _confirm_holds(conn, [order_id]))[order_id]


async def confirm_many(conn: asyncpg.Connection, order_ids: list[str]) -> dict[str, list[Held]]:
    """Confirm for many orders none of whose holds is past its deadline (the caller read
    `expired_holds`), in two statements: the orders whose Confirm applied, with the holds it
    confirmed. Any other order wrote nothing: `confirm` decides it."""
    return await _confirm_holds(conn, sorted(await barrier.confirm_many(conn, order_ids, BRANCH)))


async def _confirm_holds(conn: asyncpg.Connection, order_ids: list[str]) -> dict[str, list[Held]]:
    held: dict[str, list[Held]] = {o: [] for o in order_ids}
    if not order_ids:
        return held
    rows = await conn.fetch(
        """UPDATE fund_holds SET state = 'confirmed', confirmed_amount = amount,
               resolved_at = now()
           WHERE order_id = ANY($1::text[]) AND state = 'held'
           RETURNING order_id, account_id, amount""",
        order_ids,
    )
    for r in rows:
        held[r["order_id"]].append(Held(r["account_id"], r["amount"]))
    return held


async def cancel(conn: asyncpg.Connection, order_id: str, *, defer: bool = False) -> Entry:
    """Cancel: return exactly what was frozen to available (at the flush, with `defer`)."""
    entry = await enter(conn, order_id, BRANCH, Phase.CANCEL)
    if entry.apply:
        await _return_holds(conn, [order_id], defer)
    return entry


async def cancel_many(conn: asyncpg.Connection, order_ids: list[str]) -> dict[str, Entry | None]:
    """Cancel for many orders, the money returned at the flush: each order's verdict, or None
    where `cancel` must decide (nothing was written for it)."""
    entries = await barrier.cancel_many(conn, order_ids, BRANCH)
    await _return_holds(conn, sorted(o for o, e in entries.items() if e and e.apply), True)
    return entries


async def _return_holds(conn: asyncpg.Connection, order_ids: list[str], defer: bool) -> None:
    if not order_ids:
        return
    rows = await conn.fetch(
        """UPDATE fund_holds SET state = 'cancelled', resolved_at = now()
           WHERE order_id = ANY($1::text[]) AND state = 'held' RETURNING account_id, amount""",
        order_ids,
    )
    if defer:
        back: dict[str, tuple[int, int]] = {}
        for r in rows:
            a, f = back.get(r["account_id"], (0, 0))
            back[r["account_id"]] = (a + r["amount"], f - r["amount"])
        await deferred_balances.park(conn, back)
        return
    for r in sorted(rows, key=lambda r: str(r["account_id"])):
        await conn.execute(
            """UPDATE accounts SET available = available + $2, frozen = frozen - $2,
                   updated_at = now() WHERE account_id = $1""",
            r["account_id"],
            r["amount"],
        )
