"""The daily statement CSV read into lines with Money, never floats; bad lines say where."""

from datetime import UTC, date, datetime

import pytest

from contracts.money import Money
from workers.gateway.adapters.statement_csv import MalformedStatement, parse_statement

HEADER = "day,kind,gateway_ref,reference,currency,amount,fee,net,status,occurred_at\n"


def test_reads_every_kind() -> None:
    lines = parse_statement(
        HEADER
        + "2026-11-28,charge,gw_1,pay-1,EUR,1000,59,941,succeeded,2026-11-28T07:00:00Z\n"
        + "2026-11-28,refund,rf_1,ref-1,EUR,400,0,400,succeeded,2026-11-28T08:00:00+00:00\n"
        + "2026-11-28,payout,po_1,wd-1,JPY,5000,0,5000,paid,2026-11-28T09:00:00\n"
    )
    assert [(x.kind, x.gateway_ref, x.reference, x.status) for x in lines] == [
        ("charge", "gw_1", "pay-1", "succeeded"),
        ("refund", "rf_1", "ref-1", "succeeded"),
        ("payout", "po_1", "wd-1", "paid"),
    ]
    charge = lines[0]
    assert charge.day == date(2026, 11, 28)
    assert (charge.amount, charge.fee, charge.net) == (
        Money(amount=1000, currency="EUR"),
        Money(amount=59, currency="EUR"),
        Money(amount=941, currency="EUR"),
    )
    assert lines[2].amount == Money(amount=5000, currency="JPY")
    assert lines[2].occurred_at == datetime(2026, 11, 28, 9, tzinfo=UTC)


def test_an_empty_day_has_only_the_header() -> None:
    assert parse_statement(HEADER) == []


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "no header"),
        ("day,kind\n", "header"),
        (
            HEADER
            + "2026-11-28,charge,gw_1,pay-1,EUR,10.50,0,10.50,succeeded,2026-11-28T07:00:00Z",
            "line 2: amount",
        ),
        (
            HEADER + "2026-11-28,charge,gw_1,pay-1,EUR,1000,59,900,succeeded,2026-11-28T07:00:00Z",
            "is not amount 1000",
        ),
        (
            HEADER
            + "2026-11-28,chargeback,gw_1,pay-1,EUR,1000,0,1000,succeeded,2026-11-28T07:00:00Z",
            "kind",
        ),
        (
            HEADER + "2026-11-28,charge,gw_1,pay-1,EUR,-5,0,-5,succeeded,2026-11-28T07:00:00Z",
            "amount",
        ),
        (
            HEADER + "2026-11-28,charge,gw_1,pay-1,EURO,1000,0,1000,succeeded,2026-11-28T07:00:00Z",
            "line 2",
        ),
        (HEADER + "2026-11-28,charge,gw_1,pay-1,EUR,1000,0,1000,succeeded", "fields"),
        (
            HEADER + "yesterday,charge,gw_1,pay-1,EUR,1000,0,1000,succeeded,2026-11-28T07:00:00Z",
            "line 2",
        ),
    ],
)
def test_malformed_statements_say_why(text: str, why: str) -> None:
    with pytest.raises(MalformedStatement, match=why):
        parse_statement(text)
