"""Settling what is due: a pending charge becomes what its rules decided (the redirect
buyer pays), a pending refund succeeds or fails; each then announces itself by callback."""

import sqlite3

import structlog

from workers.gateway_simulator import bodies, records
from workers.gateway_simulator.announce import announce
from workers.gateway_simulator.config import SimConfig
from workers.gateway_simulator.engine import now_iso
from workers.gateway_simulator.writes import Writes
from workers.runtime.logs import debug_enabled

log = structlog.get_logger()

REFUND_FAILURE_REASON = "refund_declined"


def settle_due(conn: sqlite3.Connection, cfg: SimConfig, now: float, writes: Writes) -> int:
    """Settle everything due by `now` in one write (under load a tick finds hundreds); how
    many were settled. A crash before its commit leaves them all pending and due, to be
    settled on the next start."""
    charges, refunds = records.due_charges(conn, now), records.due_refunds(conn, now)
    if charges or refunds:
        writes.run(lambda: _settle_all(conn, cfg, charges, refunds, now))
    return len(charges) + len(refunds)


def _settle_all(
    conn: sqlite3.Connection,
    cfg: SimConfig,
    charges: list[sqlite3.Row],
    refunds: list[sqlite3.Row],
    now: float,
) -> None:
    for row in charges:
        _settle_charge(conn, cfg, row, now)
    for row in refunds:
        _settle_refund(conn, cfg, row, now)


def _settle_charge(conn: sqlite3.Connection, cfg: SimConfig, row: sqlite3.Row, now: float) -> None:
    settled = records.settle_charge(conn, row, now_iso())
    if settled is None or settled["status"] == "pending":
        return  # voided meanwhile: it never succeeds and nothing is announced
    if debug_enabled():
        log.debug(
            "charge_settled",
            product=row["product"],
            gateway_ref=row["gateway_ref"],
            payment_id=row["payment_id"],
            status=settled["status"],
            failure_reason=settled["failure_reason"],
            announced=bool(row["announce"]),
        )
    if not row["announce"]:
        return  # unannounced_charge: only queries and the statement show it
    announce(
        conn,
        cfg,
        provider=row["product"],
        kind="payment",
        payment_id=row["payment_id"],
        reference=row["gateway_ref"],
        body_for=lambda cb, delta: bodies.charge_body(settled, cb, delta),
        rule_delta=row["reported_delta"],
        rule_copies=row["deliveries"],
        now=now,
    )


def _settle_refund(conn: sqlite3.Connection, cfg: SimConfig, row: sqlite3.Row, now: float) -> None:
    fails = cfg.faults.hits("refund_failure", row["payment_id"])
    status, reason = ("failed", REFUND_FAILURE_REASON) if fails else ("succeeded", None)
    records.settle_refund(conn, row["seq"], status, reason, now_iso())
    settled = records.refund_by_ref(conn, row["refund_ref"])
    charge = records.charge(conn, row["product"], row["gateway_ref"])
    assert settled is not None and charge is not None
    log.info(
        "refund_settled",
        product=row["product"],
        refund_ref=row["refund_ref"],
        refund_id=row["refund_id"],
        payment_id=row["payment_id"],
        status=status,
        failure_reason=reason,
    )
    announce(
        conn,
        cfg,
        provider=row["product"],
        kind="refund",
        payment_id=row["payment_id"],
        reference=row["refund_ref"],
        body_for=lambda cb, delta: bodies.refund_body(settled, charge["amount"], cb, delta),
        now=now,
    )
