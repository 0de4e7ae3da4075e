"""Starting the workers and the gateway simulator as child processes (for the demo and the
end-to-end tests), or reusing ones that already answer."""

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from infra.settings import Settings


@dataclass
class Children:
    log_dir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")
        self.procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "workers.cli.main", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=os.environ | (env or {}),
                start_new_session=True,
            )
        )

    async def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM: each worker finishes its batch, commits and leaves its group."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                await asyncio.to_thread(p.wait, timeout_s)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs.clear()

    def dead(self) -> list[str]:
        return [str(p.args) for p in self.procs if p.poll() is not None]


async def answers(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as s, s.get(url, timeout=aiohttp.ClientTimeout(2)) as r:
            return r.status < 500 or r.status == 503
    except (aiohttp.ClientError, TimeoutError):
        return False


async def ensure_pipeline(settings: Settings, children: Children) -> list[str]:
    """Start what is not already running; return what was started."""
    started = []
    if not await answers(f"http://127.0.0.1:{settings.metrics_port}/healthz"):
        children.start("workers", "run", "all")
        started.append("workers")
    if not await answers(f"{settings.gateway_url}/healthz"):
        children.start("gateway-simulator", "run", "gateway-simulator")
        started.append("gateway-simulator")
    for _ in range(120):
        if await answers(f"http://127.0.0.1:{settings.metrics_port}/healthz") and await answers(
            f"{settings.gateway_url}/healthz"
        ):
            return started
        if children.dead():
            raise RuntimeError(f"exited at start: {children.dead()} (logs in {children.log_dir})")
        await asyncio.sleep(0.5)
    raise RuntimeError(f"workers did not answer within 60 s (logs in {children.log_dir})")
