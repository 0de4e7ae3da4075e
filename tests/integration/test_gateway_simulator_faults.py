"""Each fault mode of the gateway simulator, observed over HTTP and at our own webhook
receiver. One simulator runs every fault at a rate of 0.2 with a fixed seed; each test picks
a payment id that this seed gives exactly the fault under test (selection is per payment, so
the choice holds whatever else runs)."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from infra.settings import Settings
from tests.integration.test_gateway_simulator_support import (
    Gateway,
    Receiver,
    receiver,
    settle,
    sim_env,
    start,
    wait_up,
)
from tests.support.pipeline import eventually
from workers.gateway_simulator.faults import FAULTS, Faults
from workers.ops.processes import Children

pytestmark = pytest.mark.integration

RATE, SEED = 0.2, 11
SELECTION = Faults(dict.fromkeys(FAULTS, RATE), SEED)
RUN = uuid.uuid4().hex[:6]
LATENCY_MS, HANG_MS, LATE_MS = 800, 2_000, 1_500


def payment_with(only: str | None, prefix: str = "pay") -> str:
    """A new payment id that the seeded selection gives exactly this fault (or none)."""
    for n in range(100_000):
        candidate = f"{prefix}-{RUN}-{only or 'none'}-{n}"
        if [f for f in FAULTS if SELECTION.hits(f, candidate)] == ([only] if only else []):
            return candidate
    raise AssertionError(f"no payment id hits only {only}")


@dataclass
class Sim:
    gw: Gateway
    rec: Receiver

    async def charge(self, payment_id: str, amount: int = 1_000) -> tuple[int, dict[str, object]]:
        body = {
            "payment_id": payment_id,
            "order_id": f"ord-{payment_id}",
            "amount": {"amount": amount, "currency": "EUR"},
        }
        status, answer, _ = await self.gw.post("/v1/payments", body, f"payflow:{payment_id}")
        return status, answer

    async def called_back(self, payment_id: str, count: int = 1) -> None:
        async def enough() -> bool:
            return len(self.rec.for_payment(payment_id)) >= count

        await eventually(enough, 15, f"{count} callback(s) for {payment_id}")

    async def final(self, payment_id: str) -> list[dict[str, object]]:
        async def done() -> bool:
            found = await self.gw.charges(payment_id)
            return bool(found) and all(c["status"] != "pending" for c in found)

        await eventually(done, 15, f"{payment_id} settled")
        return await self.gw.charges(payment_id)

    async def control(self) -> None:
        """A fault-free payment called back: what was due before it has had its chance."""
        plain = payment_with(None, "ctl")
        await self.charge(plain)
        await self.called_back(plain)


@pytest.fixture(scope="module")
async def sim(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sim]:
    settings = Settings()
    children = Children(settings.state_dir / "logs" / "tests")
    db: Path = tmp_path_factory.mktemp("faults") / "sim.sqlite3"
    async with receiver(settings) as rec, aiohttp.ClientSession() as http:
        env = sim_env(
            rec,
            db,
            PAYFLOW_SIM_FAULTS=",".join(f"{f}={RATE}" for f in FAULTS),
            PAYFLOW_SIM_SEED=str(SEED),
            PAYFLOW_SIM_LATENCY_MS=str(LATENCY_MS),
            PAYFLOW_SIM_HANG_MS=str(HANG_MS),
            PAYFLOW_SIM_LATE_MS=str(LATE_MS),
        )
        start(children, env)
        try:
            gw = Gateway(settings, http)
            await wait_up(gw)
            yield Sim(gw, rec)
        finally:
            await children.stop()


async def test_latency(sim: Sim) -> None:
    began = time.monotonic()
    status, _ = await sim.charge(payment_with("latency"))
    assert status == 201 and time.monotonic() - began >= LATENCY_MS / 1000


async def test_the_same_key_sent_twice_during_latency_is_answered_once(sim: Sim) -> None:
    # Both requests wait out the latency before acting: the one that wakes second finds the
    # first one's stored answer (a write happened while it waited) and replays it.
    payment_id = payment_with("latency")
    first, second = await asyncio.gather(sim.charge(payment_id), sim.charge(payment_id))
    assert first[0] == second[0] == 201
    assert first[1] == second[1]
    assert len(await sim.gw.charges(payment_id)) == 1


async def test_error_before_charge(sim: Sim) -> None:
    payment_id = payment_with("error_before_charge")
    status, body = await sim.charge(payment_id)
    assert (status, body["error"]) == (503, "service_unavailable")
    assert await sim.gw.charges(payment_id) == []


async def test_timeout_after_charge(sim: Sim) -> None:
    payment_id = payment_with("timeout_after_charge")
    body = {
        "payment_id": payment_id,
        "order_id": "o",
        "amount": {"amount": 1_000, "currency": "EUR"},
    }
    with pytest.raises(TimeoutError):
        await sim.gw.post("/v1/payments", body, f"payflow:{payment_id}", timeout_s=0.5)
    [charge] = await sim.final(payment_id)  # charged and proceeding, whatever we saw
    assert charge["status"] == "succeeded"
    await sim.called_back(payment_id)
    await settle(HANG_MS / 1000)
    status, answer, headers = await sim.gw.post("/v1/payments", body, f"payflow:{payment_id}")
    assert (status, answer["gateway_ref"]) == (201, charge["gateway_ref"])
    assert headers.get("Idempotent-Replayed") == "true"


async def test_duplicate_callback(sim: Sim) -> None:
    payment_id = payment_with("duplicate_callback")
    await sim.charge(payment_id)
    await sim.called_back(payment_id, 2)
    first, second = sim.rec.for_payment(payment_id)
    assert first.verified and second.verified and first.body == second.body
    assert first.notice.callback_id == second.notice.callback_id


async def test_late_callback(sim: Sim) -> None:
    payment_id = payment_with("late_callback")
    began = time.monotonic()
    await sim.charge(payment_id)
    assert (await sim.final(payment_id))[0]["status"] == "succeeded"  # a query tells at once
    await sim.called_back(payment_id)
    assert sim.rec.for_payment(payment_id)[0].at - began >= LATE_MS / 1000


async def test_reorder_callbacks(sim: Sim) -> None:
    held, plain = payment_with("reorder_callbacks"), payment_with(None)
    await sim.charge(held)
    await sim.final(held)
    await sim.charge(plain)
    await sim.called_back(held)
    await sim.called_back(plain)
    order = [
        d.notice.payment_id for d in sim.rec.deliveries if d.notice.payment_id in (held, plain)
    ]
    assert order == [plain, held]


async def test_lost_callback(sim: Sim) -> None:
    payment_id = payment_with("lost_callback")
    await sim.charge(payment_id)
    [charge] = await sim.final(payment_id)
    assert charge["status"] == "succeeded"  # queries still tell the truth
    await sim.control()
    assert sim.rec.for_payment(payment_id) == []


async def test_wrong_amount(sim: Sim) -> None:
    payment_id = payment_with("wrong_amount")
    await sim.charge(payment_id, 1_000)
    await sim.called_back(payment_id)
    [cb] = sim.rec.for_payment(payment_id)
    assert cb.verified and cb.notice.amount.amount == 1_001
    [charge] = await sim.gw.charges(payment_id)
    assert charge["amount"] == {"amount": 1_000, "currency": "EUR"}


async def test_bad_signature(sim: Sim) -> None:
    payment_id = payment_with("bad_signature")
    await sim.charge(payment_id)
    await sim.called_back(payment_id)
    await sim.control()
    [cb] = sim.rec.for_payment(payment_id)  # refused with 401: final, never sent again
    assert not cb.verified


async def test_unannounced_charge(sim: Sim) -> None:
    payment_id = payment_with("unannounced_charge")
    status, body = await sim.charge(payment_id)
    assert status == 500 and body["error"] == "internal_error"
    [charge] = await sim.final(payment_id)
    assert charge["status"] == "succeeded"
    await sim.control()
    assert sim.rec.for_payment(payment_id) == []
    day = datetime.now(UTC).date().isoformat()
    statement = await sim.gw.text(f"/v1/statements/{day}")
    assert f",charge,{charge['gateway_ref']},{payment_id},EUR,1000,59,941,succeeded," in statement


async def test_double_charge(sim: Sim) -> None:
    payment_id = payment_with("double_charge")
    status, created = await sim.charge(payment_id)
    assert status == 201
    charges = await sim.final(payment_id)
    assert [c["status"] for c in charges] == ["succeeded", "succeeded"]
    assert charges[0]["gateway_ref"] == created["gateway_ref"] != charges[1]["gateway_ref"]
    await sim.called_back(payment_id, 2)
    refs = {d.notice.gateway_ref for d in sim.rec.for_payment(payment_id)}
    assert refs == {c["gateway_ref"] for c in charges}


async def test_refund_failure(sim: Sim) -> None:
    payment_id = payment_with("refund_failure")
    _, created = await sim.charge(payment_id)
    await sim.final(payment_id)
    refund_id = f"ref-{payment_id}"
    body = {
        "refund_id": refund_id,
        "gateway_ref": created["gateway_ref"],
        "amount": {"amount": 400, "currency": "EUR"},
        "reason": "test",
    }
    status, refund, _ = await sim.gw.post("/v1/refunds", body, f"payflow:refund:{refund_id}")
    assert (status, refund["status"]) == (201, "pending")
    await sim.called_back(payment_id, 2)
    [cb] = [d for d in sim.rec.for_payment(payment_id) if d.notice.kind == "refund"]
    assert (cb.notice.status, cb.notice.refund_id) == ("failed", refund_id)
    _, found = await sim.gw.get(f"/v1/refunds?refund_id={refund_id}")
    assert found["data"][0]["status"] == "failed"
