"""Reconciliation rules over plain data: every statement line and every record of ours for a
day lands in exactly one category (FIELD-NOTES section 5, docs/reconciliation.md).

A statement line is matched to a record of ours by its gateway reference, or by our own
reference when the record does not know the gateway's yet (a timeout, a payout); an
operator's relink overrides both. A matched pair is then compared: currency, amount, status.
Records still in flight within `grace_s` of the cut-off are pending, not exceptions.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Category = Literal[
    "matched",
    "pending",
    "missing_ours",  # the gateway moved money we have no record of
    "missing_gateway",  # we think it moved (or is moving), the gateway has nothing
    "amount_mismatch",
    "status_mismatch",
    "currency_mismatch",
    "duplicate",  # a second copy of a line (or of a record of ours) with the same reference
]
EXCEPTIONS: tuple[Category, ...] = (
    "missing_ours",
    "missing_gateway",
    "amount_mismatch",
    "status_mismatch",
    "currency_mismatch",
    "duplicate",
)
# What the statement says of a movement that happened.
LINE_DONE = {"charge": "succeeded", "refund": "succeeded", "payout": "paid"}
OurState = Literal["done", "in_flight", "failed"]


@dataclass(frozen=True)
class Line:
    """A statement line (workers/gateway/port.StatementLine, in plain values)."""

    kind: str  # charge | refund | payout
    gateway_ref: str
    reference: str  # ours: payment id, refund id, payout (wallet operation) id
    amount: int
    currency: str
    fee: int
    status: str
    occurred_at: str


@dataclass(frozen=True)
class Ours:
    """A record of ours: a charge, a gateway refund or a payout."""

    kind: str
    reference: str
    gateway_ref: str | None  # None: we do not know the gateway's reference (yet)
    amount: int
    currency: str
    state: OurState
    status: str  # our own status, as stored
    at: datetime  # when it was created (in flight) or when it moved (done)
    order_id: str | None = None

    @property
    def key(self) -> str:
        return f"ours:{self.kind}:{self.reference}:{self.gateway_ref or ''}"


@dataclass(frozen=True)
class Outcome:
    category: Category
    key: str  # unique per day: the line's key, or the record's when no line has it
    line: Line | None
    ours: Ours | None
    detail: str

    @property
    def ref(self) -> str:
        """The reference an operator names the case by."""
        if self.line is not None:
            return self.line.gateway_ref
        assert self.ours is not None
        return self.ours.gateway_ref or self.ours.reference


def classify(
    lines: Sequence[Line],
    ours: Sequence[Ours],
    cutoff: datetime,
    grace_s: float,
    links: Mapping[tuple[str, str], str] | None = None,
) -> list[Outcome]:
    """One outcome per line and per record of ours. `links`: (kind, gateway_ref) -> the
    reference of the record of ours an operator said the line belongs to."""
    links = links or {}
    in_grace = cutoff - timedelta(seconds=grace_s)
    out: list[Outcome] = []
    firsts: list[tuple[str, Line]] = []
    copies: dict[tuple[str, str], int] = {}
    for line in lines:
        n = copies[(line.kind, line.gateway_ref)] = copies.get((line.kind, line.gateway_ref), 0) + 1
        key = f"line:{line.kind}:{line.gateway_ref}" + (f"#{n}" if n > 1 else "")
        if n > 1:
            out.append(Outcome("duplicate", key, line, None, f"copy {n} of this line"))
        else:
            firsts.append((key, line))
    unique, dupes = _unique_ours(ours)
    out += [
        Outcome("duplicate", o.key + f"#{i}", None, o, "another record of ours has this reference")
        for i, o in dupes
    ]
    used: set[str] = set()
    index = _Index(unique)
    for key, line in firsts:
        found = index.find(line, used, links)
        if found is None:
            out.append(Outcome("missing_ours", key, line, None, "no record of ours"))
            continue
        used.add(found.key)
        category, detail = compare(line, found, in_grace)
        out.append(Outcome(category, key, line, found, detail))
    for o in unique.values():
        if o.key in used:
            continue
        if o.state == "in_flight" and o.at >= in_grace:
            out.append(Outcome("pending", o.key, None, o, "in flight at the cut-off"))
        elif o.state == "failed":
            out.append(Outcome("matched", o.key, None, o, "nothing moved on either side"))
        else:
            out.append(Outcome("missing_gateway", o.key, None, o, f"ours is {o.status}"))
    return out


def compare(line: Line, ours: Ours, in_grace: datetime) -> tuple[Category, str]:
    if line.currency != ours.currency:
        return "currency_mismatch", f"statement {line.currency}, ours {ours.currency}"
    if line.amount != ours.amount:
        return "amount_mismatch", f"statement {line.amount}, ours {ours.amount}"
    if line.status != LINE_DONE.get(line.kind):
        return "status_mismatch", f"statement says {line.status}"
    if ours.state == "done":
        return "matched", ""
    if ours.state == "failed":
        return "status_mismatch", f"statement says {line.status}, ours is {ours.status}"
    if ours.at >= in_grace:
        return "pending", f"ours is {ours.status}, in flight at the cut-off"
    if line.kind == "charge":  # a charge of a known payment we never recorded
        return "missing_ours", f"charge not recorded, payment is {ours.status}"
    return "status_mismatch", f"statement says {line.status}, ours is {ours.status}"


def _unique_ours(ours: Sequence[Ours]) -> tuple[dict[str, Ours], list[tuple[int, Ours]]]:
    """Records by key; a second record with the same gateway reference is a duplicate."""
    unique: dict[str, Ours] = {}
    refs: set[tuple[str, str]] = set()
    dupes: list[tuple[int, Ours]] = []
    for o in ours:
        ref = (o.kind, o.gateway_ref) if o.gateway_ref else None
        if o.key in unique or (ref is not None and ref in refs):
            dupes.append((len(dupes) + 2, o))
            continue
        unique[o.key] = o
        if ref is not None:
            refs.add(ref)
    return unique, dupes


class _Index:
    """Records of ours by gateway reference and by our reference, to find a line's."""

    def __init__(self, ours: Mapping[str, Ours]) -> None:
        self.by_ref: dict[tuple[str, str], Ours] = {}
        self.by_reference: dict[tuple[str, str], list[Ours]] = {}
        for o in ours.values():
            if o.gateway_ref is not None:
                self.by_ref[(o.kind, o.gateway_ref)] = o
            self.by_reference.setdefault((o.kind, o.reference), []).append(o)

    def find(self, line: Line, used: set[str], links: Mapping[tuple[str, str], str]) -> Ours | None:
        linked = links.get((line.kind, line.gateway_ref))
        if linked is not None:
            return next(
                (o for o in self.by_reference.get((line.kind, linked), []) if o.key not in used),
                None,
            )
        o = self.by_ref.get((line.kind, line.gateway_ref))
        if o is not None and o.key not in used:
            return o
        candidates = self.by_reference.get((line.kind, line.reference), [])
        return next((o for o in candidates if o.gateway_ref is None and o.key not in used), None)


def exceptions(outcomes: Sequence[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.category in EXCEPTIONS]
