"""The health/metrics endpoint and its port: a sibling replica (same namespace, same stages)
takes the next slot, anything else on the port is a clear error."""

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from workers.runtime.health import Dependencies, Health
from workers.runtime.health_server import REPLICA_STEP, PortInUse, start_health_server

HOST = "127.0.0.1"
NAMESPACE = "unit-health"


def _free_base_port(host: str = HOST, family: socket.AddressFamily = socket.AF_INET) -> int:
    """A port that is free, as are the two replica slots after it."""
    for _ in range(50):
        with socket.socket(family) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port + 2 * REPLICA_STEP > 65_535:
            continue
        try:
            for slot in (port, port + REPLICA_STEP, port + 2 * REPLICA_STEP):
                with socket.socket(family) as s:
                    s.bind((host, slot))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port with free replica slots")


def _healths(*stages: str, deps: Dependencies | None = None) -> list[Health]:
    deps = deps or Dependencies()
    return [Health(s, dependencies=deps, partitions=1) for s in stages]


Start = Callable[..., Coroutine[Any, Any, tuple[web.AppRunner, int]]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """start_health_server, with every server it started cleaned up afterwards."""
    runners: list[web.AppRunner] = []

    async def go(
        healths: list[Health],
        base_port: int,
        namespace: str = NAMESPACE,
        host: str = HOST,
        deps: Dependencies | None = None,
    ) -> tuple[web.AppRunner, int]:
        deps = deps or healths[0].dependencies
        runner, port = await start_health_server(healths, deps, namespace, host, base_port)
        runners.append(runner)
        return runner, port

    yield go
    for runner in runners:
        await runner.cleanup()


async def _get(port: int, path: str, host: str = HOST) -> tuple[int, str]:
    url_host = f"[{host}]" if ":" in host else host
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://{url_host}:{port}{path}") as resp,
    ):
        return resp.status, await resp.text()


async def _healthz(port: int, host: str = HOST) -> tuple[int, dict[str, Any]]:
    url_host = f"[{host}]" if ":" in host else host
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://{url_host}:{port}/healthz") as resp,
    ):
        body: dict[str, Any] = await resp.json()
        return resp.status, body


@asynccontextmanager
async def _plain_listener(port: int) -> AsyncIterator[socket.socket]:
    """Something that is not payflow holding the port: it accepts and never answers."""
    sock = socket.socket()
    try:
        sock.bind((HOST, port))
        sock.listen()
        yield sock
    finally:
        sock.close()


async def test_first_process_takes_the_base_port(start: Start) -> None:
    base = _free_base_port()
    _, port = await start(_healths("order_build"), base)
    assert port == base
    status, body = await _healthz(port)
    assert status == 200
    assert body["ok"] is True
    assert body["namespace"] == NAMESPACE
    assert body["pid"] == os.getpid()
    assert [s["stage"] for s in body["stages"]] == ["order_build"]
    assert body["dependencies"] == {}


async def test_a_second_replica_of_the_same_stages_takes_the_next_slot(start: Start) -> None:
    base = _free_base_port()
    _, first = await start(_healths("fund_freeze", "settlement"), base)
    # Same stages in another order: the same process kind.
    _, second = await start(_healths("settlement", "fund_freeze"), base)
    _, third = await start(_healths("fund_freeze", "settlement"), base)
    assert (first, second, third) == (base, base + REPLICA_STEP, base + 2 * REPLICA_STEP)
    for port in (first, second, third):
        status, body = await _healthz(port)
        assert status == 200
        assert sorted(s["stage"] for s in body["stages"]) == ["fund_freeze", "settlement"]


async def test_a_sibling_that_is_unhealthy_is_still_a_sibling(start: Start) -> None:
    base = _free_base_port()
    sick = _healths("order_build")
    sick[0].failing("OSError: refused")
    await start(sick, base)
    _, port = await start(_healths("order_build"), base)
    assert port == base + REPLICA_STEP


async def test_a_plain_socket_on_the_base_port_is_port_in_use_naming_the_variable(
    start: Start,
) -> None:
    base = _free_base_port()
    async with _plain_listener(base):
        with pytest.raises(PortInUse) as raised:
            await start(_healths("order_build"), base)
    message = str(raised.value)
    assert "PAYFLOW_METRICS_PORT" in message
    assert f"{HOST}:{base}" in message
    assert "not payflow" in message


async def test_an_http_server_that_is_not_payflow_is_port_in_use(start: Start) -> None:
    base = _free_base_port()
    other = web.Application()
    other.add_routes([web.get("/healthz", _spring_boot_health)])
    runner = web.AppRunner(other)
    await runner.setup()
    await web.TCPSite(runner, HOST, base).start()
    try:
        with pytest.raises(PortInUse, match="PAYFLOW_METRICS_PORT"):
            await start(_healths("order_build"), base)
    finally:
        await runner.cleanup()


async def _spring_boot_health(_: web.Request) -> web.Response:
    return web.json_response({"status": "UP"})


async def test_payflow_of_another_namespace_is_port_in_use(start: Start) -> None:
    base = _free_base_port()
    await start(_healths("order_build"), base, namespace="staging")
    with pytest.raises(PortInUse) as raised:
        await start(_healths("order_build"), base, namespace="prod")
    assert "'staging'" in str(raised.value)
    assert "PAYFLOW_METRICS_PORT" in str(raised.value)


async def test_payflow_running_other_stages_is_port_in_use(start: Start) -> None:
    base = _free_base_port()
    await start(_healths("order_build"), base)
    with pytest.raises(PortInUse, match="PAYFLOW_METRICS_PORT"):
        await start(_healths("fund_freeze"), base)


async def test_a_stranger_on_the_next_slot_is_port_in_use(start: Start) -> None:
    base = _free_base_port()
    await start(_healths("order_build"), base)
    await start(_healths("order_build"), base + REPLICA_STEP, namespace="staging")
    with pytest.raises(PortInUse) as raised:
        await start(_healths("order_build"), base)
    assert f"{HOST}:{base + REPLICA_STEP}" in str(raised.value)


async def test_a_port_given_back_is_taken_again(start: Start) -> None:
    base = _free_base_port()
    runner, _ = await start(_healths("order_build"), base)
    await runner.cleanup()
    _, port = await start(_healths("order_build"), base)
    assert port == base


async def test_healthz_is_503_with_the_reasons_when_a_stage_is_unhealthy(start: Start) -> None:
    deps = Dependencies()
    healthy, failing = _healths("order_build", "fund_freeze", deps=deps)
    failing.failing("TransientError: a lock that is never released")
    deps.answered("kafka")
    deps.failed("postgres", "OSError: connection refused")
    _, port = await start([healthy, failing], _free_base_port())

    status, body = await _healthz(port)

    assert status == 503
    assert body["ok"] is False
    stages = {s["stage"]: s for s in body["stages"]}
    assert stages["order_build"]["reasons"] == ["postgres unreachable: OSError: connection refused"]
    assert [r.split(":")[0] for r in stages["fund_freeze"]["reasons"]] == [
        "failing",
        "postgres unreachable",
    ]
    assert stages["fund_freeze"]["last_error"] == "TransientError: a lock that is never released"
    assert body["dependencies"] == {
        "kafka": {"ok": True, "error": None},
        "postgres": {"ok": False, "error": "OSError: connection refused"},
    }


async def test_healthz_follows_the_stage_back_to_ok(start: Start) -> None:
    healths = _healths("order_build")
    _, port = await start(healths, _free_base_port())
    healths[0].failing("OSError: reset")
    assert (await _healthz(port))[0] == 503
    healths[0].progressed()
    status, body = await _healthz(port)
    assert (status, body["ok"]) == (200, True)


async def test_metrics_are_served_in_prometheus_text(start: Start) -> None:
    healths = _healths("health_server_unit")
    healths[0].observed_lag(12)
    _, port = await start(healths, _free_base_port())
    status, text = await _get(port, "/metrics")
    assert status == 200
    assert 'payflow_consumer_lag{stage="health_server_unit"} 12.0' in text
    assert "payflow_batch_failures_total" in text


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
async def test_replicas_on_an_ipv6_host_find_their_sibling(start: Start) -> None:
    base = _free_base_port("::1", socket.AF_INET6)
    _, first = await start(_healths("order_build"), base, host="::1")
    _, second = await start(_healths("order_build"), base, host="::1")
    assert (first, second) == (base, base + REPLICA_STEP)
    assert (await _healthz(second, "::1"))[0] == 200


async def test_concurrent_replicas_get_distinct_ports(start: Start) -> None:
    base = _free_base_port()
    results = await asyncio.gather(
        *(start(_healths("wallet"), base) for _ in range(3)), return_exceptions=True
    )
    ports = sorted(r[1] for r in results if isinstance(r, tuple))
    assert ports == [base, base + REPLICA_STEP, base + 2 * REPLICA_STEP], results
