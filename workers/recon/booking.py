"""What a reconciled statement line books: the gateway's fee, and what it pays out.

Our postings debit the gateway clearing account with every charge (settlement, top-ups, late
money) and credit it with every refund sent. A matched statement line closes that: a charge's
fee goes to the platform's `gateway_fees` expense and its net to `gateway_settlements` (what
the gateway pays to our bank); a refund's amount is taken back out of what it pays. So the
clearing account nets to zero for a reconciled day. One posting per line, keyed by day and
line: a second run books nothing.
"""

from datetime import date

import asyncpg

from workers.ledger import accounts, postings
from workers.ledger.postings import Leg
from workers.recon.rules import Line


def legs(line: Line, *, clearing: str, fees: str, settlements: str) -> list[Leg]:
    if line.kind == "charge":
        return [
            Leg(fees, clearing, line.fee, "recon:gateway_fee"),
            Leg(settlements, clearing, line.amount - line.fee, "recon:charge_net"),
        ]
    if line.kind == "refund":
        return [Leg(clearing, settlements, line.amount, "recon:refund")]
    return []  # payouts leave through the payouts account, never the clearing one


def idempotency_key(day: date, line_key: str) -> str:
    return f"recon:{day.isoformat()}:{line_key}"


async def book(
    conn: asyncpg.Connection, day: date, line_key: str, line: Line, order_id: str | None
) -> bool:
    """True when this line was booked now (False: nothing to book, or booked before)."""
    cur = line.currency
    to_post = legs(
        line,
        clearing=await accounts.ensure(conn, accounts.external("gateway_clearing", cur)),
        fees=await accounts.ensure(conn, accounts.platform("gateway_fees", cur)),
        settlements=await accounts.ensure(conn, accounts.external("gateway_settlements", cur)),
    )
    if not any(leg.amount for leg in to_post):
        return False
    txn = await postings.post(
        conn,
        kind="gateway_settlement",
        order_id=order_id,
        idempotency_key=idempotency_key(day, line_key),
        currency=cur,
        legs=to_post,
    )
    return txn is not None
