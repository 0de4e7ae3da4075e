"""The gateway side of the audit against the real simulator over HTTP: every charge on the
gateway's statement for the day has a payment record of ours (an unknown reference is
listed), and a charge of a known payment that nothing told us about is listed too; a
gateway that cannot be asked fails the audit with one line."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
import pytest_asyncio

from infra.settings import Settings
from tests.integration.test_late_payments import (
    _apply,
    _charged_at_the_gateway,
    _paid,
    _payment,
)
from tests.support.gateway_edge import gateway
from tests.support.services import scratch_database
from workers.ops.audit import gateway_audit, main_audit, run_audit

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module")
async def pool(services: Settings) -> AsyncIterator[asyncpg.Pool]:
    """This module plants audit violations on purpose: it gets a database of its own."""
    async with scratch_database(services, "auditgw") as p:
        yield p


async def test_statement_charges_are_held_against_our_records(
    services: Settings, pool: asyncpg.Pool
) -> None:
    uid = uuid.uuid4().hex[:8]
    ours, stranger, untold = f"pay-ag-{uid}", f"pay-ag-x-{uid}", f"pay-ag-u-{uid}"
    async with gateway(services, {}) as gateways:
        refs = {p: await _charged_at_the_gateway(gateways, p) for p in (ours, stranger, untold)}
        await _payment(pool, "payment_requested", "pending", ours)
        await _payment(pool, "payment_requested", "pending", untold)
        assert (await _apply(pool, None, _paid(ours, refs[ours]))).verdict == "applied"
        async with pool.acquire() as conn:
            report = await run_audit(conn, services)
            await gateway_audit(conn, services, datetime.now(UTC).date(), report)
    mine = {
        v["row"]["reference"]: v["check"]
        for v in report["violations"]
        if v["row"].get("reference") in (ours, stranger, untold)
    }
    assert mine == {
        stranger: "gateway_charges_have_payments",
        untold: "gateway_charges_recorded",
    }
    assert report["checked"]["gateway_charges_have_payments"] >= 3
    # Leave nothing open for other tests' audits: the untold charge is learned.
    await _apply(pool, None, _paid(untold, refs[untold]))


async def test_an_unreachable_gateway_fails_the_audit_with_one_line(
    services: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = services.model_copy(update={"gateway_url": "http://127.0.0.1:9"})
    code = await main_audit(settings, as_json=True, gateway_day=datetime.now(UTC).date())
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("audit: gateway statement for ")
