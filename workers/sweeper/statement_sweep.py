"""Charges only the gateway's statement knows of: every PAYFLOW_STATEMENT_SWEEP_S the sweeper
reads the statement for today and yesterday (UTC) and decides each charge of one of our
payments that no callback or query told us about, through the same fenced path as a callback.

This is what catches a second charge whose callbacks were all lost after its payment was
decided: the sweeper no longer asks about a decided payment, but the statement lists every
charge. An extra charge becomes late money refunded through the gateway; a charge of an
open payment decides it. A charge whose reference is none of our payments is left to the
audit and reconciliation (nothing here can decide it).
"""

from datetime import UTC, date, datetime, timedelta

import asyncpg
import structlog

from contracts.money import Money
from infra.settings import Settings
from workers.callback_handling import decision
from workers.gateway.port import Notice, StatementLine
from workers.gateway.registry import Gateways
from workers.late_payments.statement_check import statement_lines
from workers.runtime import outbox
from workers.runtime.outbox import Message
from workers.sweeper import store

log = structlog.get_logger()
PRODUCER = "sweeper"


def task_key(day: date, now: datetime, every_s: float) -> str:
    """One sweep of a day's statement per interval, whichever replica gets it."""
    return f"statement:{day.isoformat()}:{int(now.timestamp() // every_s)}"


def days_to_read(now: datetime) -> list[date]:
    """Yesterday too: a charge made just before midnight is on that day's statement."""
    today = now.astimezone(UTC).date()
    return [today - timedelta(days=1), today]


def notice_for(gateway_ref: str, reference: str, amount: Money) -> Notice:
    """A charge line of the statement, read as a verified notice (the statement is our own
    authenticated request): a succeeded charge of the payment it names."""
    return Notice(
        callback_id=f"statement:{gateway_ref}",
        kind="payment",
        payment_id=reference,
        gateway_ref=gateway_ref,
        status="succeeded",
        amount=amount,
    )


async def sweep(
    pool: asyncpg.Pool, gateways: Gateways, settings: Settings, now: datetime
) -> list[Message]:
    """Due sweeps of the statement; returns the messages to publish (already in the outbox)."""
    messages: list[Message] = []
    adapters = [gateways.adapter(name) for name in sorted(set(settings.routes.values()))]
    for day in days_to_read(now):
        key = task_key(day, now, settings.statement_sweep_s)
        async with pool.acquire() as conn:
            if not await store.claim(conn, key, settings.statement_sweep_s):
                continue
        lines = await statement_lines(adapters, day)
        async with pool.acquire() as conn:
            unseen = await store.unseen_charges(
                conn, [line.gateway_ref for line in lines], [line.reference for line in lines]
            )
        for line in lines:
            if line.gateway_ref in unseen:
                messages += await _decide(pool, line)
        async with pool.acquire() as conn:
            await store.finish(conn, key, f"{len(unseen)} unseen of {len(lines)}")
        log.info("statement_swept", day=day.isoformat(), lines=len(lines), unseen=len(unseen))
    return messages


async def _decide(pool: asyncpg.Pool, line: StatementLine) -> list[Message]:
    async with pool.acquire() as conn, conn.transaction():
        notice = notice_for(line.gateway_ref, line.reference, line.amount)
        decided = await decision.apply(conn, None, notice)
        log.info("statement_charge", gateway_ref=line.gateway_ref, verdict=decided.verdict)
        return await outbox.store(conn, PRODUCER, None, decided.events)
