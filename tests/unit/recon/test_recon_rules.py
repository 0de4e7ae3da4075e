"""The reconciliation rules over plain data: each case lands in its category, and every line
and every record lands in exactly one (a hypothesis property)."""

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from workers.recon.rules import EXCEPTIONS, Line, Ours, classify

CUTOFF = datetime(2026, 11, 28, 23, 59, 59, tzinfo=UTC)
OLD = CUTOFF - timedelta(hours=5)
RECENT = CUTOFF - timedelta(minutes=1)
GRACE = 900.0


def line(
    ref: str,
    reference: str,
    amount: int = 500,
    currency: str = "EUR",
    kind: str = "charge",
    status: str = "succeeded",
) -> Line:
    return Line(kind, ref, reference, amount, currency, 45, status, "2026-11-28T10:00:00+00:00")


def ours(
    reference: str,
    ref: str | None,
    state: str = "done",
    amount: int = 500,
    currency: str = "EUR",
    at: datetime = OLD,
    kind: str = "charge",
) -> Ours:
    status = {"done": "succeeded", "in_flight": "pending", "failed": "failed"}[state]
    return Ours(kind, reference, ref, amount, currency, state, status, at)  # type: ignore[arg-type]


def categories(
    lines: list[Line], records: list[Ours], links: dict[tuple[str, str], str] | None = None
) -> dict[str, str]:
    return {o.key: o.category for o in classify(lines, records, CUTOFF, GRACE, links)}


def test_one_case_of_each_category() -> None:
    lines = [
        line("g-ok", "p-ok"),
        line("g-orphan", "p-unknown"),
        line("g-amount", "p-amount", amount=600),
        line("g-status", "p-status"),
        line("g-cur", "p-cur", currency="USD"),
        line("g-ok", "p-ok"),  # the same line twice
        line("g-pend", "p-pend"),
    ]
    records = [
        ours("p-ok", "g-ok"),
        ours("p-gone", "g-gone"),
        ours("p-amount", "g-amount"),
        ours("p-status", "g-status", state="failed"),
        ours("p-cur", "g-cur"),
        ours("p-pend", "g-pend", state="in_flight", at=RECENT),
        ours("p-flight", None, state="in_flight", at=RECENT),
    ]
    assert categories(lines, records) == {
        "line:charge:g-ok": "matched",
        "line:charge:g-orphan": "missing_ours",
        "line:charge:g-amount": "amount_mismatch",
        "line:charge:g-status": "status_mismatch",
        "line:charge:g-cur": "currency_mismatch",
        "line:charge:g-ok#2": "duplicate",
        "line:charge:g-pend": "pending",
        "ours:charge:p-gone:g-gone": "missing_gateway",
        "ours:charge:p-flight:": "pending",
    }


def test_a_second_charge_of_a_known_payment_is_missing_ours() -> None:
    lines = [line("g-1", "p-1"), line("g-2", "p-1")]
    assert categories(lines, [ours("p-1", "g-1")]) == {
        "line:charge:g-1": "matched",
        "line:charge:g-2": "missing_ours",
    }


def test_in_flight_past_the_grace_is_an_exception() -> None:
    lines = [line("g-1", "p-1")]
    assert categories(lines, [ours("p-1", None, state="in_flight", at=OLD)]) == {
        "line:charge:g-1": "missing_ours"
    }
    refund = line("r-1", "late:g-1", kind="refund")
    stale = ours("late:g-1", None, state="in_flight", kind="refund")
    assert categories([refund], [stale]) == {"line:refund:r-1": "status_mismatch"}
    assert categories([], [ours("p-2", None, state="in_flight")]) == {
        "ours:charge:p-2:": "missing_gateway"
    }


def test_matched_by_our_reference_when_we_lack_the_gateways() -> None:
    payout = line("po-1", "wd-1", kind="payout", status="paid")
    assert categories([payout], [ours("wd-1", None, kind="payout")]) == {
        "line:payout:po-1": "matched"
    }


def test_a_relink_points_a_line_at_another_record() -> None:
    lines = [line("g-x", "p-typo")]
    records = [ours("p-real", "g-wrong")]
    assert set(categories(lines, records).values()) == {"missing_ours", "missing_gateway"}
    assert categories(lines, records, {("charge", "g-x"): "p-real"}) == {
        "line:charge:g-x": "matched"
    }


def test_a_duplicate_record_of_ours() -> None:
    records = [ours("p-1", "g-1"), ours("p-2", "g-1")]
    found = classify([line("g-1", "p-1")], records, CUTOFF, GRACE)
    assert Counter(o.category for o in found) == {"matched": 1, "duplicate": 1}


refs = st.sampled_from(["g1", "g2", "g3", "g4"])
references = st.sampled_from(["p1", "p2", "p3"])
kinds = st.sampled_from(["charge", "refund", "payout"])
amounts = st.sampled_from([100, 500])
currencies = st.sampled_from(["EUR", "USD"])
lines_st = st.builds(
    Line,
    kinds,
    refs,
    references,
    amounts,
    currencies,
    st.just(0),
    st.sampled_from(["succeeded", "paid", "failed"]),
    st.just("t"),
)
ours_st = st.builds(
    Ours,
    kinds,
    references,
    st.none() | refs,
    amounts,
    currencies,
    st.sampled_from(["done", "in_flight", "failed"]),
    st.just("s"),
    st.sampled_from([OLD, RECENT]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(lines_st, max_size=8),
    st.lists(ours_st, max_size=8),
    st.dictionaries(st.tuples(kinds, refs), references, max_size=2),
)
def test_every_line_and_record_lands_in_exactly_one_category(
    lines: list[Line], records: list[Ours], links: dict[tuple[str, str], str]
) -> None:
    found = classify(lines, records, CUTOFF, GRACE, links)
    line_hits = Counter(id(o.line) for o in found if o.line is not None)
    our_hits = Counter(id(o.ours) for o in found if o.ours is not None)
    assert all(line_hits[id(x)] == 1 for x in lines)
    assert len(line_hits) == len({id(x) for x in lines})
    assert all(our_hits[id(x)] == 1 for x in records)
    assert len({o.key for o in found}) == len(found)  # one stored row per outcome
    assert all(o.category in (*EXCEPTIONS, "matched", "pending") for o in found)
