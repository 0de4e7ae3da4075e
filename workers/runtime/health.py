"""Health: a consumer that has lag and makes no progress is stuck (aiokafka #1154)."""

import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


@dataclass
class Health:
    stage: str
    stuck_after_s: float = 60.0
    lag: int = 0
    error: str | None = None
    last_progress: float = field(default_factory=time.monotonic)

    def progressed(self) -> None:
        self.last_progress = time.monotonic()
        self.error = None

    def failing(self, error: str) -> None:
        self.error = error

    def idle_check(self) -> None:
        if self.lag == 0:  # caught up: idle is healthy
            self.last_progress = time.monotonic()

    def report(self) -> dict[str, Any]:
        since = time.monotonic() - self.last_progress
        stuck = self.lag > 0 and since > self.stuck_after_s
        return {
            "stage": self.stage,
            "ok": not stuck,
            "lag": self.lag,
            "seconds_since_progress": round(since, 1),
            "last_error": self.error,
        }


async def start_health_server(healths: list[Health], host: str, port: int) -> web.AppRunner:
    """/healthz (503 when any stage is stuck) and /metrics (Prometheus)."""

    async def healthz(_: web.Request) -> web.Response:
        reports = [h.report() for h in healths]
        ok = all(r["ok"] for r in reports)
        return web.json_response({"ok": ok, "stages": reports}, status=200 if ok else 503)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz), web.get("/metrics", metrics)])
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
