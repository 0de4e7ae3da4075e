"""Health and metrics against the real services: a stage whose batches keep failing says
so (503, the reason in the JSON, failures and retries counted by class), its lag keeps being
measured from the broker while nothing succeeds, Postgres going away and coming back is
seen by the probes, and two replicas of one stage on one host each serve on a port."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from contracts.envelope import Envelope
from contracts.topics import namespace
from infra.ports import free_ports
from infra.settings import Settings
from tests.support.pipeline import eventually, order_state, order_submitted, publish, seed_catalogue
from tests.support.tcp_proxy import TcpProxy
from workers.app import run_stages
from workers.order_build.step import OrderBuild
from workers.runtime.consumer import StageRunner
from workers.runtime.errors import TransientError
from workers.runtime.health import Health
from workers.runtime.health_server import REPLICA_STEP, start_health_server

pytestmark = pytest.mark.integration
HOST = "127.0.0.1"


class AlwaysTransient(OrderBuild):
    """Every event fails with an error that looks transient until `broken` is cleared: the
    batch can never succeed, so it is kept (never dead-lettered) and the stage is failing."""

    broken = True
    batched = False  # one event at a time: `handle` is what fails

    async def handle(
        self, event: Envelope, tx: asyncpg.Connection, prepared: Any
    ) -> Sequence[Envelope]:
        if self.broken:
            raise TransientError("a lock that is never released")
        return await super().handle(event, tx, prepared)


def _free_base_port() -> int:
    """A free port whose next replica slots are free too (below the ephemeral range)."""
    return free_ports(2 * REPLICA_STEP + 1)


async def _healthz(port: int) -> tuple[int, dict[str, Any]] | None:
    """(status, JSON) of /healthz, or None while nothing answers."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
            session.get(f"http://{HOST}:{port}/healthz") as resp,
        ):
            body: dict[str, Any] = await resp.json()
            return resp.status, body
    except aiohttp.ClientError:
        return None


async def _metric(port: int, name: str, **labels: str) -> float:
    """One sample of the /metrics text (0 when the series does not exist yet)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://{HOST}:{port}/metrics") as resp,
    ):
        assert resp.status == 200
        text = await resp.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def _reasons(body: dict[str, Any], stage: str) -> list[str]:
    (report,) = [s for s in body["stages"] if s["stage"] == stage]
    return list(report["reasons"])


@asynccontextmanager
async def _running(
    stage: OrderBuild,
    settings: Settings,
    pool: asyncpg.Pool,
    producer: AIOKafkaProducer,
    health: Health,
) -> AsyncIterator[int]:
    """A StageRunner with its health server; yields the health port."""
    server, port = await start_health_server(
        [health], health.dependencies, namespace(), HOST, _free_base_port()
    )
    stop = asyncio.Event()
    task = asyncio.create_task(StageRunner(stage, settings, pool, producer, health).run(stop))
    try:
        yield port
    finally:
        stop.set()
        await task
        await server.cleanup()


async def _built(pool: asyncpg.Pool, *order_ids: str) -> bool:
    for order_id in order_ids:
        if await order_state(pool, order_id) != "built":
            return False
    return True


async def test_a_stage_whose_batches_keep_failing_is_unhealthy_and_counted(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    order_id = f"failing-{uuid.uuid4().hex[:8]}"
    await publish(
        producer, order_submitted(order_id, "buyer-failing", {"sku-tee": 1}, "wallet_only")
    )
    # One record per batch: nothing in it can succeed, so it is kept at once (no bisection).
    quick = services.model_copy(
        update={"retry_budget_s": 2.0, "batch_max_records": 1, "health_probe_interval_s": 0.5}
    )
    stage = AlwaysTransient()
    health = Health(stage.name)

    failures = {"stage": stage.name, "error_class": "TransientError"}
    retries = {"stage": stage.name, "reason": "TransientError"}
    failures_before = REGISTRY.get_sample_value("payflow_batch_failures_total", failures) or 0
    retries_before = REGISTRY.get_sample_value("payflow_batch_retries_total", retries) or 0

    async with _running(stage, quick, pool, producer, health) as port:

        async def failing() -> bool:
            answer = await _healthz(port)
            return answer is not None and any(
                r.startswith("failing:") for r in _reasons(answer[1], stage.name)
            )

        await eventually(failing, 60, "the stage reported failing")
        status, body = await _healthz(port) or (0, {})
        assert status == 503
        assert body["ok"] is False
        (reason,) = [r for r in _reasons(body, stage.name) if r.startswith("failing:")]
        assert "TransientError: a lock that is never released" in reason
        assert body["stages"][0]["last_error"] == "TransientError: a lock that is never released"
        assert health.last_success_at is None

        assert await _metric(port, "payflow_batch_failures_total", **failures) > failures_before
        assert await _metric(port, "payflow_batch_retries_total", **retries) > retries_before
        # Nothing succeeded, so nothing was condemned: the event is kept, not dead-lettered.
        assert await order_state(pool, order_id) is None
        dead = await pool.fetchval(
            "SELECT count(*) FROM dead_letters WHERE order_id = $1", order_id
        )
        assert dead == 0

        # The cause goes away: the kept event is processed and the stage is healthy again.
        stage.broken = False
        await eventually(lambda: _built(pool, order_id), 60, "the kept order built")

        async def ok() -> bool:
            answer = await _healthz(port)
            return answer is not None and answer[0] == 200

        await eventually(ok, 30, "the stage healthy again")
        assert health.last_success_at is not None
        assert health.failing_batches == 0


async def test_lag_is_measured_from_the_broker_while_no_batch_succeeds(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    run = uuid.uuid4().hex[:6]
    first = [f"lagging-{run}-a{i}" for i in range(3)]
    later = [f"lagging-{run}-b{i}" for i in range(2)]
    for order_id in first:
        await publish(
            producer, order_submitted(order_id, "buyer-lag", {"sku-tee": 1}, "wallet_only")
        )
    quick = services.model_copy(
        update={"retry_budget_s": 1.0, "batch_max_records": 1, "health_probe_interval_s": 0.2}
    )
    stage = AlwaysTransient()
    health = Health(stage.name)

    async with _running(stage, quick, pool, producer, health) as port:

        async def lag_at_least(n: int) -> bool:
            return health.failing_batches > 0 and health.lag >= n

        await eventually(lambda: lag_at_least(3), 60, "lag of the unprocessed events measured")
        assert health.last_success_at is None

        # More events while it keeps failing: the probe sees them, no batch has to succeed.
        for order_id in later:
            await publish(
                producer, order_submitted(order_id, "buyer-lag", {"sku-tee": 1}, "wallet_only")
            )
        await eventually(lambda: lag_at_least(5), 60, "lag refreshed with the new events")
        assert health.last_success_at is None
        assert await _metric(port, "payflow_consumer_lag", stage=stage.name) >= 5
        (status, body) = await _healthz(port) or (0, {})
        assert status == 503
        assert body["stages"][0]["lag"] >= 5

        stage.broken = False
        await eventually(lambda: _built(pool, *first, *later), 90, "the kept orders built")

        async def caught_up() -> bool:
            return health.lag == 0

        await eventually(caught_up, 30, "lag back to 0 once processed")


async def _run_stages(settings: Settings, port: int, stop: asyncio.Event) -> asyncio.Task[None]:
    return asyncio.create_task(run_stages(["order_build"], settings, stop, health_port=port))


@asynccontextmanager
async def _stages(settings: Settings, port: int) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = await _run_stages(settings, port, stop)
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


def _through(dsn: str, proxy: TcpProxy) -> str:
    parts = urlsplit(dsn)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{proxy.host}:{proxy.port}" if userinfo else f"{proxy.host}:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


async def test_postgres_going_away_and_coming_back_is_seen_by_the_probes(
    services: Settings,
) -> None:
    target = urlsplit(services.dsn)
    async with TcpProxy(target.hostname or HOST, target.port or 5432) as proxy:
        settings = services.model_copy(
            update={
                "pg_dsn": _through(services.dsn, proxy),
                "health_probe_interval_s": 0.3,
                "connect_timeout_s": 2.0,
            }
        )
        base = _free_base_port()

        async def status_is(expected: int) -> bool:
            answer = await _healthz(base)
            return answer is not None and answer[0] == expected

        async with _stages(settings, base) as task:
            await eventually(lambda: status_is(200), 60, "the stage healthy through the proxy")
            assert proxy.connections > 0  # the stage's pool really goes through it

            await proxy.cut()
            await eventually(lambda: status_is(503), 30, "postgres reported unreachable")
            status, body = await _healthz(base) or (0, {})
            assert status == 503
            reasons = _reasons(body, "order_build")
            assert any(r.startswith("postgres unreachable:") for r in reasons), reasons
            assert body["dependencies"]["postgres"]["ok"] is False
            assert body["dependencies"]["postgres"]["error"]
            assert await _metric(base, "payflow_dependency_up", dependency="postgres") == 0

            await proxy.restore()
            await eventually(lambda: status_is(200), 60, "postgres reachable again")
            status, body = await _healthz(base) or (0, {})
            assert body["dependencies"]["postgres"] == {"ok": True, "error": None}
            assert _reasons(body, "order_build") == []
            assert await _metric(base, "payflow_dependency_up", dependency="postgres") == 1
            assert not task.done()


async def test_two_replicas_of_one_stage_on_one_host_each_serve_on_their_port(
    services: Settings,
) -> None:
    base = _free_base_port()
    settings = services.model_copy(update={"health_probe_interval_s": 0.3})

    async def answers(port: int) -> bool:
        return await _healthz(port) is not None

    async with _stages(settings, base) as first:
        await eventually(lambda: answers(base), 60, "the first replica serving")
        async with _stages(settings, base) as second:
            await eventually(lambda: answers(base + REPLICA_STEP), 60, "the second replica")

            async def both_consuming() -> bool:
                one, two = await _healthz(base), await _healthz(base + REPLICA_STEP)
                if one is None or two is None:
                    return False
                parts: list[int] = [
                    one[1]["stages"][0]["partitions"],
                    two[1]["stages"][0]["partitions"],
                ]
                return min(parts) > 0 and sum(parts) == services.topic_partitions

            await eventually(both_consuming, 60, "the group's partitions shared by both")
            for port in (base, base + REPLICA_STEP):
                status, body = await _healthz(port) or (0, {})
                assert status == 200, body
                assert body["namespace"] == namespace()
                assert [s["stage"] for s in body["stages"]] == ["order_build"]
                assert await _metric(port, "payflow_partitions_assigned", stage="order_build") > 0
            assert await _healthz(base + 2 * REPLICA_STEP) is None
            assert not first.done() and not second.done()
