"""`payflow account statement <account>`: entries with their running balance."""

import json
from dataclasses import asdict
from datetime import datetime

from contracts.money import Money
from infra.settings import Settings
from workers.cli.failures import CliError
from workers.ledger.statements import Statement, UnknownAccount, statement
from workers.runtime.db import connect


async def print_statement(
    settings: Settings,
    account: str,
    since: datetime | None,
    until: datetime | None,
    *,
    as_json: bool,
) -> int:
    conn = await connect(settings)
    try:
        st = await statement(conn, account, since, until)
    except UnknownAccount as exc:
        raise CliError(
            f"{exc}; account ids read <owner kind>:<owner>:<purpose>:<currency>, "
            "e.g. buyer:buyer-001:wallet:EUR"
        ) from exc
    finally:
        await conn.close()
    if as_json:
        print(json.dumps(asdict(st) | {"consistent": st.consistent}, default=str, indent=2))
    else:
        _print_lines(st)
    return 0 if st.consistent else 1


def _print_lines(st: Statement) -> None:
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
