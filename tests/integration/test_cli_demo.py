"""Ctrl-C or SIGTERM in the middle of `payflow demo` stops the workers it started: nothing
keeps holding their ports, and the demo ends with one line and 128 + the signal."""

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient

from contracts.topics import all_topic_names, namespace
from infra.ports import free_port, free_ports
from infra.settings import Settings
from tests.support.pipeline import eventually
from workers.ops.processes import who_answers
from workers.runtime.health_server import REPLICA_STEP

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def demo_env(services: Settings) -> AsyncIterator[dict[str, str]]:
    """A namespace, database and ports of the demo's own; removed afterwards."""
    suffix = uuid.uuid4().hex[:6]
    ns, database = f"{namespace()}d{suffix}", f"{services.pg_database}_demo_{suffix}"
    server = services.dsn.rsplit("/", 1)[0]
    yield {
        "PAYFLOW_TOPIC_NAMESPACE": ns,
        "PAYFLOW_PG_DSN": f"{server}/{database}",
        "PAYFLOW_METRICS_PORT": str(free_ports(REPLICA_STEP)),
        "PAYFLOW_GATEWAY_URL": f"http://127.0.0.1:{free_port()}",
    }
    admin = await asyncpg.connect(f"{server}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await admin.close()
    kafka = AIOKafkaAdminClient(bootstrap_servers=services.kafka_bootstrap)
    await kafka.start()
    try:
        existing = set(await kafka.list_topics())
        ours = [n.replace(f"{namespace()}.", f"{ns}.", 1) for n in all_topic_names()]
        await kafka.delete_topics([t for t in ours if t in existing])
    finally:
        await kafka.close()


async def _worker_pid(metrics_url: str) -> int | None:
    async with aiohttp.ClientSession() as s, s.get(metrics_url) as resp:
        body = await resp.json(content_type=None)
    pid = body.get("pid")
    return pid if isinstance(pid, int) else None


def _as_from_a_terminal() -> None:
    """In the demo's child process: the signals as a terminal's foreground command has them.
    Started from a background job (`cmd &` in a script, as CI may be), SIGINT is inherited
    ignored, and payflow leaves an ignored signal ignored (workers/cli/aio.py)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize(
    ("sig", "line"),
    [
        (signal.SIGINT, "error: interrupted by SIGINT"),
        (signal.SIGTERM, "error: stopped by SIGTERM"),
    ],
)
async def test_a_signal_stops_the_demo_and_its_workers(
    demo_env: dict[str, str], sig: signal.Signals, line: str
) -> None:
    metrics = f"http://127.0.0.1:{demo_env['PAYFLOW_METRICS_PORT']}/healthz"
    gateway = f"{demo_env['PAYFLOW_GATEWAY_URL']}/healthz"
    demo = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "workers.cli.main", "demo", "--orders", "400", "--json"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=os.environ | demo_env,
        preexec_fn=_as_from_a_terminal,
    )
    try:

        async def workers_answer() -> bool:
            answer = await who_answers(metrics)
            assert demo.returncode is None, "the demo ended before its workers answered"
            return answer.occupant == "payflow"

        await eventually(workers_answer, 90, "the demo's workers answering")
        pid = await _worker_pid(metrics)
        demo.send_signal(sig)
        _, raw = await asyncio.wait_for(demo.communicate(), 90)
        err = raw.decode()
    finally:
        if demo.returncode is None:  # the test failed: still leave nothing behind
            demo.terminate()
            await asyncio.wait_for(demo.wait(), 60)

    assert demo.returncode == 128 + sig, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == line
    assert (await who_answers(metrics)).occupant == "nothing"
    assert (await who_answers(gateway)).occupant == "nothing"
    if pid is not None:
        assert not _alive(pid)
