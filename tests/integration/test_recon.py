"""`payflow recon` against real Postgres (a scratch database per test, so counts are exact)
and the real gateway simulator over HTTP (its own records, so its statement holds this
test's charges only): a seeded statement classified exactly, a clean day reconciled with
fees booked once, and a double charge caught and refunded through the gateway."""

import csv
import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from contracts.money import Money
from infra.settings import Settings
from tests.support.gateway_edge import gateway, plant_payment, uid
from tests.support.pipeline import eventually
from tests.support.services import scratch_database
from workers.callback_handling import decision
from workers.gateway.port import Charge
from workers.gateway.registry import Gateways
from workers.gateway_simulator.rules import charge_fee
from workers.late_payments import records, refund_job
from workers.ledger import accounts, postings
from workers.ledger.postings import Leg
from workers.ops.audit import run_audit
from workers.payments.rules import charge_request
from workers.recon.run import fetch_statement, reconcile
from workers.sweeper import rules

pytestmark = pytest.mark.integration
COLUMNS = "day,kind,gateway_ref,reference,currency,amount,fee,net,status,occurred_at"


@pytest.fixture
async def scratch(services: Settings) -> AsyncIterator[tuple[Settings, asyncpg.Pool]]:
    suffix = f"recon_{uuid.uuid4().hex[:8]}"
    async with scratch_database(services, suffix) as p:
        yield services.model_copy(update={"pg_database": f"{services.pg_database}_{suffix}"}), p


def payflow(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PAYFLOW_PG_DATABASE": settings.pg_database}
    return subprocess.run(
        [sys.executable, "-m", "workers.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def statement_csv(rows: list[tuple[str, str, str, int, str]]) -> str:
    """(gateway_ref, reference, currency, amount, status) charges of today, as the gateway
    writes them."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(COLUMNS.split(","))
    at = datetime.now(UTC).isoformat()
    for ref, reference, currency, amount, status in rows:
        fee = charge_fee(amount)
        out.writerow(
            [today(), "charge", ref, reference, currency, amount, fee, amount - fee, status, at]
        )
    return buf.getvalue()


async def plant(
    conn: asyncpg.Connection,
    payment_id: str,
    status: str,
    ref: str | None,
    charge: str | None = None,
) -> None:
    """A 5.00 EUR payment in `status`, known by the gateway as `ref`; `charge`: the status of
    the charge we recorded (None: none)."""
    await plant_payment(
        conn,
        order_id=f"ord-{payment_id}",
        transaction_id=f"txn-{payment_id}",
        payment_id=payment_id,
        order_state="payment_requested",
        status=status,
        buyer="buyer-recon",
    )
    await conn.execute(
        "UPDATE payment_requests SET gateway_ref = $2 WHERE payment_id = $1", payment_id, ref
    )
    if charge is not None and ref is not None:
        await records.record_charge(
            conn,
            payment_id=payment_id,
            gateway_ref=ref,
            amount=500,
            currency="EUR",
            status=charge,
            source="callback",
        )


def refs(report: dict[str, Any]) -> dict[str, list[str]]:
    return {c: sorted(r["key"] for r in rows) for c, rows in report["exceptions"].items()}


async def test_a_seeded_statement_is_classified_exactly(
    scratch: tuple[Settings, asyncpg.Pool], tmp_path: Path
) -> None:
    settings, pool = scratch
    async with pool.acquire() as conn:
        await plant(conn, "p-ok", "succeeded", "g-ok", "succeeded")
        await plant(conn, "p-gone", "succeeded", "g-gone", "succeeded")
        await plant(conn, "p-amt", "succeeded", "g-amt", "succeeded")
        await plant(conn, "p-status", "failed", "g-status", "failed")
        await plant(conn, "p-cur", "succeeded", "g-cur", "succeeded")
        await plant(conn, "p-pend", "pending", "g-pend")
    text = statement_csv(
        [
            ("g-ok", "p-ok", "EUR", 500, "succeeded"),
            ("g-orphan", "p-nobody", "EUR", 700, "succeeded"),
            ("g-amt", "p-amt", "EUR", 600, "succeeded"),
            ("g-status", "p-status", "EUR", 500, "succeeded"),
            ("g-cur", "p-cur", "USD", 500, "succeeded"),
            ("g-ok", "p-ok", "EUR", 500, "succeeded"),
            ("g-pend", "p-pend", "EUR", 500, "succeeded"),
        ]
    )
    path = tmp_path / "statement.csv"
    path.write_text(text)

    first = payflow(settings, "recon", "--date", today(), "--statement", str(path), "--json")
    again = payflow(settings, "recon", "--date", today(), "--statement", str(path), "--json")

    assert first.returncode == 1, (first.stdout, first.stderr)
    assert first.stdout, first.stderr
    report = json.loads(first.stdout)
    assert (report["matched"], report["pending"], report["ok"]) == (1, 1, False)
    assert refs(report) == {
        "missing_ours": ["line:charge:g-orphan"],
        "missing_gateway": ["ours:charge:p-gone:g-gone"],
        "amount_mismatch": ["line:charge:g-amt"],
        "status_mismatch": ["line:charge:g-status"],
        "currency_mismatch": ["line:charge:g-cur"],
        "duplicate": ["line:charge:g-ok#2"],
    }
    assert report["fees"] == {"EUR": charge_fee(500)}
    assert (again.returncode, json.loads(again.stdout)) == (1, report)  # same result
    cases = await pool.fetchval(
        "SELECT count(*) FROM review_cases WHERE kind = 'recon_exception' AND state = 'open'"
    )
    booked = await pool.fetchval(
        "SELECT count(*) FROM ledger_transactions WHERE kind = 'gateway_settlement'"
    )
    assert (cases, booked) == (6, 1)

    explain = payflow(
        settings,
        "recon",
        "resolve",
        f"{today()}:g-orphan",
        "--action",
        "explain",
        "--reason",
        "test charge",
        "--operator",
        "alice",
    )
    assert explain.returncode == 0, explain.stderr
    after = json.loads(
        payflow(settings, "recon", "--date", today(), "--statement", str(path), "--json").stdout
    )
    assert "missing_ours" not in after["exceptions"] and after["explained"] == 1
    logged = await pool.fetchrow("SELECT operator, action, reason FROM operator_actions")
    assert tuple(logged) == ("alice", "explain", "test charge")


async def charged(gateways: Gateways, payment_id: str, n: int) -> list[Charge]:
    async def done() -> bool:
        found = await gateways.adapter("direct").query_payment(payment_id)
        return len([c for c in found if c.status == "succeeded"]) == n

    await eventually(done, 30, f"{n} charge(s) of {payment_id}")
    found = await gateways.adapter("direct").query_payment(payment_id)
    return sorted((c for c in found if c.status == "succeeded"), key=lambda c: c.gateway_ref)


async def settled(conn: asyncpg.Connection, order_id: str) -> None:
    """What settlement posts for a 5.00 EUR order paid through the gateway: the gateway owes
    it (the settlement stage does not run here; its legs are tested with it)."""
    clearing = await accounts.ensure(conn, accounts.external("gateway_clearing", "EUR"))
    payable = await accounts.ensure(conn, accounts.merchant_payable("m-recon", "EUR"))
    legs = [Leg(clearing, payable, 500, "gateway_part")]
    await postings.post(
        conn,
        kind="purchase",
        order_id=order_id,
        idempotency_key=f"purchase:{order_id}",
        currency="EUR",
        legs=legs,
    )


async def test_a_clean_day_reconciles_and_books_fees_once(
    scratch: tuple[Settings, asyncpg.Pool], tmp_path: Path
) -> None:
    settings, pool = scratch
    payments = [uid("pay-clean"), uid("pay-clean")]
    async with pool.acquire() as conn:
        for p in payments:
            await plant(conn, p, "pending", None)
    env = {"PAYFLOW_SIM_DB": str(tmp_path / "sim.db")}
    async with gateway(settings, env) as gateways:
        for p in payments:
            eur5 = Money(amount=500, currency="EUR")
            await gateways.adapter("direct").create_payment(charge_request(p, f"ord-{p}", eur5, p))
        for p in payments:
            (charge,) = await charged(gateways, p, 1)
            async with pool.acquire() as conn, conn.transaction():
                await decision.apply(conn, None, rules.notice_for(charge))
                await settled(conn, f"ord-{p}")
        day = datetime.now(UTC).date()
        statement = await fetch_statement(settings, day)
        first = await reconcile(pool, day, statement, source="gateway", grace_s=900)
        second = await reconcile(pool, day, statement, source="gateway", grace_s=900)
        cli = payflow(settings, "recon", "--date", day.isoformat())

    assert (first["matched"], first["pending"], first["exceptions"], first["ok"]) == (
        2,
        0,
        {},
        True,
    )
    assert {k: v for k, v in second.items() if k != "run_id"} == {
        k: v for k, v in first.items() if k != "run_id"
    }
    assert cli.returncode == 0, cli.stderr
    assert "reconciled" in cli.stdout
    fee = charge_fee(500)
    balances = {
        r["purpose"]: r["total"]
        for r in await pool.fetch("SELECT purpose, total FROM accounts WHERE currency = 'EUR'")
    }
    # Booked once, however often the day is run: the fee to the fee account, the rest to
    # what the gateway pays out; the clearing account nets to zero for the day.
    assert balances["gateway_fees"] == -2 * fee
    assert balances["gateway_settlements"] == -2 * (500 - fee)
    assert balances["gateway_clearing"] == 0
    booked = await pool.fetchval(
        "SELECT count(*) FROM ledger_transactions WHERE kind = 'gateway_settlement'"
    )
    assert booked == 2


async def test_a_double_charge_is_caught_and_refunded(
    scratch: tuple[Settings, asyncpg.Pool], tmp_path: Path
) -> None:
    settings, pool = scratch
    settings = settings.model_copy(update={"callback_grace_s": 0.5})
    payment_id = uid("pay-double")
    async with pool.acquire() as conn:
        await plant(conn, payment_id, "pending", None)
    env = {"PAYFLOW_SIM_FAULTS": "double_charge=1", "PAYFLOW_SIM_DB": str(tmp_path / "sim.db")}
    async with gateway(settings, env) as gateways:
        eur5 = Money(amount=500, currency="EUR")
        await gateways.adapter("direct").create_payment(
            charge_request(payment_id, f"ord-{payment_id}", eur5, payment_id)
        )
        first, second = await charged(gateways, payment_id, 2)
        async with pool.acquire() as conn, conn.transaction():  # first's callback: decided
            await decision.apply(conn, None, rules.notice_for(first))
        # second's callbacks are lost: only the statement knows of it.
        day = datetime.now(UTC).date()
        caught = await reconcile(
            pool, day, await fetch_statement(settings, day), source="gateway", grace_s=900
        )
        assert refs(caught) == {"missing_ours": [f"line:charge:{second.gateway_ref}"]}
        case_id = caught["exceptions"]["missing_ours"][0]["case_id"]

        args = (
            "recon",
            "resolve",
            str(case_id),
            "--action",
            "refund",
            "--reason",
            "double charge",
            "--operator",
            "bob",
            "--json",
        )
        resolved = payflow(settings, *args)
        repeated = payflow(settings, *args)
        conflicting = payflow(
            settings,
            "recon",
            "resolve",
            str(case_id),
            "--action",
            "explain",
            "--reason",
            "no",
            "--operator",
            "eve",
        )

        refund_id = records.late_refund_id(second.gateway_ref)

        async def refunded() -> bool:
            await refund_job.run_due(pool, gateways, settings)
            status = await pool.fetchval(
                "SELECT status FROM gateway_refunds WHERE refund_id = $1", refund_id
            )
            return bool(status == "succeeded")

        await eventually(refunded, 30, "the second charge refunded through the gateway")
        after = await reconcile(
            pool, day, await fetch_statement(settings, day), source="gateway", grace_s=900
        )

    assert resolved.returncode == 0, resolved.stderr
    outcome = json.loads(resolved.stdout)
    assert (outcome["outcome"], outcome["repeated"]) == ("refund: second_charge", False)
    assert outcome["detail"]["late_refund"] == refund_id
    assert (repeated.returncode, json.loads(repeated.stdout)["repeated"]) == (0, True)
    assert conflicting.returncode == 1 and "already resolved" in conflicting.stderr
    assert "Traceback" not in conflicting.stderr
    assert (after["matched"], after["exceptions"], after["ok"]) == (
        3,
        {},
        True,
    )  # 2 charges, 1 refund
    case = await pool.fetchrow(
        "SELECT state, resolved_by FROM review_cases WHERE case_id = $1", case_id
    )
    assert tuple(case) == ("resolved", "bob")
    actions = await pool.fetch(
        "SELECT operator, action, outcome FROM operator_actions ORDER BY action_id"
    )
    assert [tuple(a) for a in actions] == [
        ("bob", "refund", "refund: second_charge"),
        ("eve", "explain", "refused"),
    ]
    async with pool.acquire() as conn:
        audit = await run_audit(conn, settings)
    assert audit["ok"], audit["violations"]


async def test_create_and_relink_resolve_their_exceptions(
    scratch: tuple[Settings, asyncpg.Pool], tmp_path: Path
) -> None:
    settings, pool = scratch
    async with pool.acquire() as conn:
        await plant(conn, "p-stale", "pending", "g-stale")  # charged; the callback never came
        await conn.execute(
            "UPDATE payment_requests SET created_at = now() - interval '2 hours'"
            " WHERE payment_id = 'p-stale'"
        )
        await plant(conn, "p-real", "succeeded", "g-real", "succeeded")
    path = tmp_path / "statement.csv"
    path.write_text(
        statement_csv(
            [
                ("g-stale", "p-stale", "EUR", 500, "succeeded"),
                ("g-x", "p-typo", "EUR", 500, "succeeded"),  # the gateway's record of p-real
            ]
        )
    )
    run = ("recon", "--date", today(), "--statement", str(path), "--json")
    before = json.loads(payflow(settings, *run).stdout)
    assert refs(before) == {
        "missing_ours": ["line:charge:g-stale", "line:charge:g-x"],
        "missing_gateway": ["ours:charge:p-real:g-real"],
    }
    who = ("--reason", "seen at the gateway", "--operator", "carol")
    created = payflow(
        settings, "recon", "resolve", f"{today()}:g-stale", "--action", "create", *who
    )
    wrong = payflow(
        settings,
        "recon",
        "resolve",
        f"{today()}:g-x",
        "--action",
        "relink",
        "--to",
        "p-nothing",
        *who,
    )
    relinked = payflow(
        settings, "recon", "resolve", f"{today()}:g-x", "--action", "relink", "--to", "p-real", *who
    )
    after = payflow(settings, *run)

    assert created.returncode == 0 and "create: applied" in created.stdout, created.stderr
    assert wrong.returncode == 1 and "no charge of ours is called p-nothing" in wrong.stderr
    assert relinked.returncode == 0 and "linked to p-real" in relinked.stdout, relinked.stderr
    assert after.returncode == 0, after.stdout
    report = json.loads(after.stdout)
    assert (report["matched"], report["exceptions"], report["ok"]) == (2, {}, True)
    paid = await pool.fetchval("SELECT status FROM payment_requests WHERE payment_id = 'p-stale'")
    assert paid == "succeeded"  # decided through the fenced path, as a callback would
    open_cases = await pool.fetchval("SELECT count(*) FROM review_cases WHERE state = 'open'")
    assert open_cases == 0
