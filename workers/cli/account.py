"""`payflow account statement <account>`: entries with their running balance."""

import argparse
import json
from dataclasses import asdict
from datetime import datetime

import asyncpg

from contracts.money import Money
from infra.settings import Settings
from workers.ledger.statements import UnknownAccount, statement


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise SystemExit(f"give a time zone in {text!r}, e.g. 2026-11-25T00:00:00+00:00")
    return moment


async def main_account(args: argparse.Namespace, settings: Settings) -> int:
    conn = await asyncpg.connect(settings.dsn)
    try:
        st = await statement(conn, args.account, _when(args.since), _when(args.until))
    except UnknownAccount as exc:
        print(exc)
        return 1
    finally:
        await conn.close()
    if args.json:
        print(json.dumps(asdict(st) | {"consistent": st.consistent}, default=str, indent=2))
        return 0 if st.consistent else 1

    def fmt(amount: int) -> str:
        sign = "-" if amount < 0 else ""
        return sign + str(Money(amount=abs(amount), currency=st.currency))

    print(f"statement of {st.account_id}  opening {fmt(st.opening)}")
    for line in st.lines:
        print(
            f"{line.at:%Y-%m-%d %H:%M:%S}  #{line.entry_id:<8} {line.kind:<9} "
            f"{line.leg:<24} {fmt(line.amount):>16}  {fmt(line.balance):>16}  "
            f"{line.order_id or ''} <> {line.counterparty}"
        )
    print(
        f"closing {fmt(st.closing)}; stored balance {fmt(st.stored_total)}, rebuilt from "
        f"entries {fmt(st.rebuilt_total)}: {'consistent' if st.consistent else 'MISMATCH'}"
    )
    return 0 if st.consistent else 1
