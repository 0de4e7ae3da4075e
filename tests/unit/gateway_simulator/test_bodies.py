"""Every callback body the simulator sends is read by workers/gateway/notices.read_notice."""

import sqlite3
from pathlib import Path

import pytest

from contracts.money import Money
from workers.gateway.notices import read_notice
from workers.gateway_simulator import bodies, db, records

NOW = "2026-11-28T10:00:00+00:00"


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return db.connect(tmp_path / "sim.sqlite3")


def _charge(conn: sqlite3.Connection, product: str, status: str, reason: str | None) -> sqlite3.Row:
    records.insert_charge(
        conn,
        gateway_ref=f"{product[0]}-ref",
        product=product,
        payment_id="pay-1",
        order_id="ord-1",
        subject="order",
        amount=1_000,
        currency="EUR",
        status=status,
        failure_reason=reason,
        outcome=status,
        outcome_reason=reason,
        deliveries=1,
        reported_delta=0,
        announce=1,
        settle_at=0.0,
        created_at=NOW,
        updated_at=NOW,
        succeeded_at=NOW if status == "succeeded" else None,
    )
    row = records.charge(conn, product, f"{product[0]}-ref")
    assert row is not None
    return row


def _refund(conn: sqlite3.Connection, product: str, status: str, reason: str | None) -> sqlite3.Row:
    records.insert_refund(
        conn,
        refund_ref=f"{product[0]}-rr",
        product=product,
        refund_id="ref-1",
        gateway_ref=f"{product[0]}-ref",
        payment_id="pay-1",
        amount=400,
        currency="EUR",
        reason="x",
        status=status,
        failure_reason=reason,
        settle_at=0.0,
        created_at=NOW,
        updated_at=NOW,
    )
    row = records.refund_by_ref(conn, f"{product[0]}-rr")
    assert row is not None
    return row


@pytest.mark.parametrize("product", ["direct", "redirect"])
@pytest.mark.parametrize(("status", "reason"), [("succeeded", None), ("failed", "card_declined")])
def test_payment_bodies(
    conn: sqlite3.Connection, product: str, status: str, reason: str | None
) -> None:
    row = _charge(conn, product, status, reason)
    notice = read_notice(product, bodies.charge_body(row, "cb_1", 0))
    assert (notice.kind, notice.callback_id, notice.payment_id) == ("payment", "cb_1", "pay-1")
    assert (notice.gateway_ref, notice.status) == (row["gateway_ref"], status)
    assert notice.amount == Money(amount=1_000, currency="EUR")
    assert notice.failure_reason == reason
    over = read_notice(product, bodies.charge_body(row, "cb_2", 1))
    assert over.amount == Money(amount=1_001, currency="EUR")  # wrong_amount / 99 cents


@pytest.mark.parametrize("product", ["direct", "redirect"])
@pytest.mark.parametrize(("status", "reason"), [("succeeded", None), ("failed", "refund_declined")])
def test_refund_bodies(
    conn: sqlite3.Connection, product: str, status: str, reason: str | None
) -> None:
    _charge(conn, product, "succeeded", None)
    row = _refund(conn, product, status, reason)
    notice = read_notice(product, bodies.refund_body(row, 1_000, "cb_3", 0))
    assert (notice.kind, notice.status, notice.failure_reason) == ("refund", status, reason)
    assert (notice.refund_id, notice.refund_ref) == ("ref-1", row["refund_ref"])
    assert (notice.payment_id, notice.gateway_ref) == ("pay-1", row["gateway_ref"])
    assert notice.amount == Money(amount=400, currency="EUR")
