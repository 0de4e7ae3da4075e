"""Starting the workers and the gateway simulator as child processes (for the demo and the
end-to-end tests), or reusing ones of this namespace that already answer.

Children run in their own session, so a Ctrl-C in the terminal does not reach them: whoever
started them stops them (`Children.stop`: SIGTERM, wait, then SIGKILL stragglers).
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp

from contracts.topics import namespace
from infra.services.process import ServiceError, log_tail
from infra.settings import Settings
from workers.cli.aio import stop_if_signalled

START_LIMIT_S = 60.0
# Marks the demo's children: the development gateway secret is expected there (no warning).
DEMO_ENV = {"PAYFLOW_DEMO": "1"}
# The demo's clock runs in seconds: unpaid orders are cancelled and silent payments asked
# about within a demo run. A value the user set wins.
DEMO_TIMINGS = {
    "PAYFLOW_PAYMENT_WINDOW_S": "60",
    "PAYFLOW_CALLBACK_GRACE_S": "5",
    "PAYFLOW_SWEEPER_SCHEDULE_S": "2,4,8,16",
    "PAYFLOW_SWEEPER_INTERVAL_S": "1",
    "PAYFLOW_STATEMENT_SWEEP_S": "10",
}


def demo_env() -> dict[str, str]:
    return DEMO_ENV | {k: v for k, v in DEMO_TIMINGS.items() if k not in os.environ}


@dataclass
class Children:
    log_dir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "workers.cli.main", *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=os.environ | (env or {}),
                start_new_session=True,
            )
        self.procs.append(proc)
        self.names.append(name)

    async def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM: each worker finishes its batch, commits and leaves its group. Whatever
        is still running after timeout_s (or when this wait is cancelled) is killed."""
        alive = [p for p in self.procs if p.poll() is None]
        for p in alive:
            p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        try:
            for p in alive:
                try:
                    await asyncio.to_thread(p.wait, max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        finally:
            self.kill()
            self.procs.clear()
            self.names.clear()

    def kill(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    def dead(self) -> list[str]:
        return [str(p.args) for p in self.procs if p.poll() is not None]

    def first_exited(self) -> str | None:
        """'<name> exited with code N: <last log line>' for a child that has stopped."""
        for name, p in zip(self.names, self.procs, strict=True):
            if p.poll() is not None:
                log = self.log_dir / f"{name}.log"
                last = log_tail(log, 1).strip()[:300]
                return f"{name} exited with code {p.returncode}: {last} (log: {log})"
        return None


Occupant = Literal["nothing", "payflow", "simulator", "other"]


@dataclass(frozen=True)
class Answer:
    occupant: Occupant
    namespace: str | None = None


def classify(body: Any) -> Answer:
    """What a /healthz body says about who answers: a payflow worker process (with its
    topic namespace), the gateway simulator, or something else."""
    if isinstance(body, dict) and isinstance(body.get("stages"), list):
        found = body.get("namespace")
        return Answer("payflow", found if isinstance(found, str) else None)
    if isinstance(body, dict) and "pending_callbacks" in body:
        return Answer("simulator")
    return Answer("other")


async def who_answers(url: str) -> Answer:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s,
            s.get(url) as resp,
        ):
            body = await resp.json(content_type=None)
    except aiohttp.ClientConnectorError:
        return Answer("nothing")  # nothing listens there
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return Answer("other")  # something listens, but does not answer like payflow
    return classify(body)


def _metrics_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.metrics_host in ("0.0.0.0", "") else settings.metrics_host
    return f"http://{host}:{settings.metrics_port}/healthz"


def check_workers(answer: Answer, settings: Settings, *, started: bool) -> bool:
    """True when this namespace's workers answer, False when nothing does; raise when the
    port is someone else's. Workers we started ourselves may not report a namespace yet."""
    ours = namespace()
    if answer.occupant == "nothing":
        return False
    if answer.occupant == "payflow" and (
        answer.namespace == ours or (started and answer.namespace is None)
    ):
        return True
    if answer.occupant != "payflow":
        who = "not a payflow worker"
    elif answer.namespace is None:
        who = "a payflow worker that does not say its namespace"
    else:
        who = f"payflow of namespace {answer.namespace!r}, not {ours!r}"
    raise ServiceError(
        f"port {settings.metrics_port} answers but is {who}; stop it, or set "
        "PAYFLOW_METRICS_PORT to a free port"
    )


def check_simulator(answer: Answer, settings: Settings) -> bool:
    if answer.occupant in ("simulator", "nothing"):
        return answer.occupant == "simulator"
    raise ServiceError(
        f"{settings.gateway_url} answers but is not the payflow gateway simulator; stop it, "
        "or set PAYFLOW_GATEWAY_URL to a free port"
    )


async def ensure_pipeline(settings: Settings, children: Children) -> list[str]:
    """Start what is not already running; return what was started."""
    started = []
    gateway = f"{settings.gateway_url}/healthz"
    if not check_workers(await who_answers(_metrics_url(settings)), settings, started=False):
        children.start("workers", "run", "all", env=demo_env())
        started.append("workers")
    if not check_simulator(await who_answers(gateway), settings):
        children.start("gateway-simulator", "run", "gateway-simulator", env=demo_env())
        started.append("gateway-simulator")
    deadline = time.monotonic() + START_LIMIT_S
    while time.monotonic() < deadline:
        workers = await who_answers(_metrics_url(settings))
        if check_workers(workers, settings, started=bool(started)) and check_simulator(
            await who_answers(gateway), settings
        ):
            return started
        exited = children.first_exited()
        if exited is not None:
            raise ServiceError(f"a demo process failed at start: {exited}")
        stop_if_signalled()
        await asyncio.sleep(0.5)
    raise ServiceError(
        f"the workers did not answer within {START_LIMIT_S:.0f} s (logs in {children.log_dir})"
    )
