"""The health and metrics endpoint of one worker process, and the port it listens on.

Several replicas of one stage may run on one host: replica r of a process whose base port
is P listens on P + r * REPLICA_STEP. A replica takes the next slot only when the one it
wanted is held by a payflow process of the same namespace running the same stages; a port
held by anything else is an error that names the variable to change.
"""

import asyncio
import errno
import os
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from workers.runtime.health import Dependencies, Health

REPLICA_STEP = 10
MAX_REPLICAS = 10


class PortInUse(RuntimeError):
    """The health/metrics port is taken by something that is not a sibling replica."""


def process_report(
    healths: list[Health], dependencies: Dependencies, namespace: str
) -> dict[str, Any]:
    stages = [h.report() for h in healths]
    return {
        "ok": all(s["ok"] for s in stages),
        "namespace": namespace,
        "pid": os.getpid(),
        "stages": stages,
        "dependencies": dependencies.report(),
    }


def _app(healths: list[Health], dependencies: Dependencies, namespace: str) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        report = process_report(healths, dependencies, namespace)
        return web.json_response(report, status=200 if report["ok"] else 503)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz), web.get("/metrics", metrics)])
    return app


async def _occupant(host: str, port: int) -> dict[str, Any] | None:
    """What answers /healthz on the port, if it is a payflow worker."""
    probe_host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in probe_host:  # an IPv6 address goes in brackets in a URL
        probe_host = f"[{probe_host}]"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s,
            s.get(f"http://{probe_host}:{port}/healthz") as resp,
        ):
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    return body if isinstance(body, dict) and "namespace" in body else None


def _is_sibling(occupant: dict[str, Any] | None, namespace: str, stages: list[str]) -> bool:
    if occupant is None or occupant.get("namespace") != namespace:
        return False
    return sorted(s.get("stage") for s in occupant.get("stages", [])) == sorted(stages)


async def start_health_server(
    healths: list[Health], dependencies: Dependencies, namespace: str, host: str, base_port: int
) -> tuple[web.AppRunner, int]:
    """Serve /healthz and /metrics on the first free replica slot; return the port."""
    runner = web.AppRunner(_app(healths, dependencies, namespace), access_log=None)
    await runner.setup()
    stages = [h.stage for h in healths]
    for replica in range(MAX_REPLICAS):
        port = base_port + replica * REPLICA_STEP
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
            return runner, port
        except OSError as exc:
            await site.stop()  # unregister the site that never started
            if exc.errno != errno.EADDRINUSE:
                await runner.cleanup()
                raise
        occupant = None
        for _ in range(3):  # a sibling that has just bound may not answer yet
            occupant = await _occupant(host, port)
            if occupant is not None:
                break
            await asyncio.sleep(0.5)
        if not _is_sibling(occupant, namespace, stages):
            await runner.cleanup()
            what = (
                "something that is not payflow"
                if occupant is None
                else f"payflow of namespace {occupant.get('namespace')!r}"
            )
            raise PortInUse(
                f"health/metrics port {host}:{port} is in use by {what}; "
                "set PAYFLOW_METRICS_PORT to a free port"
            )
    await runner.cleanup()
    raise PortInUse(
        f"{MAX_REPLICAS} replicas of {', '.join(stages)} already listen from port {base_port} "
        f"in steps of {REPLICA_STEP}; set PAYFLOW_METRICS_PORT to another base port"
    )
