"""The webhook process's /healthz (Kafka and Postgres answer) and /metrics."""

import asyncio
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from workers.runtime import metrics

if TYPE_CHECKING:
    from workers.webhook.app import Webhook


class Health:
    def __init__(self, webhook: "Webhook") -> None:
        self.webhook = webhook

    async def healthz(self, _: web.Request) -> web.Response:
        """200 when both answer within the connect timeout; 503 naming what did not."""
        timeout = self.webhook.settings.connect_timeout_s
        report: dict[str, Any] = {}
        for name, check in (("postgres", self._postgres), ("kafka", self._kafka)):
            try:
                await asyncio.wait_for(check(), timeout)
                report[name] = {"ok": True, "error": None}
            except Exception as exc:
                report[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
            metrics.DEPENDENCY_UP.labels(name).set(1 if report[name]["ok"] else 0)
        ok = all(d["ok"] for d in report.values())
        return web.json_response(
            {"ok": ok, "service": "webhook", "dependencies": report}, status=200 if ok else 503
        )

    async def _postgres(self) -> None:
        await self.webhook.pool.fetchval("SELECT 1")

    async def _kafka(self) -> None:
        await self.webhook.producer.client.fetch_all_metadata()


async def metrics_page(_: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})
