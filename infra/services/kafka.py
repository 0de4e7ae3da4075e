"""Apache Kafka 4.x, one node in KRaft combined mode (broker + controller), run from Maven jars."""

from __future__ import annotations

import asyncio
import base64
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaTimeoutError

from infra.services import process as p
from infra.settings import KAFKA_TOPIC_RETENTION_DAYS, PROJECT_ROOT, Settings

NAME = "kafka"
POM = PROJECT_ROOT / "infra" / "kafka" / "pom.xml"
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
START_TIMEOUT_S = 90.0
TOPIC_ALREADY_EXISTS = 36
# How long a topic may stay without a leader after ensure_topics asked for it.
READY_WITHIN_S = 30.0

LOG4J2 = """\
status = warn
# Kafka logs its own shutdown from a JVM hook; log4j2's hook would close the log first.
shutdownHook = disable
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def home(s: Settings) -> Path:
    return s.state_dir / "kafka"


def libs_dir(s: Settings) -> Path:
    return home(s) / f"libs-{s.kafka_version}"


def pid_file(s: Settings) -> Path:
    return s.state_dir / "run" / f"{NAME}.pid"


def marker(s: Settings) -> str:
    # Our broker's command line names our server.properties: a pid reused by any other
    # process, or another checkout's broker, is never taken for ours.
    return str(home(s) / "server.properties")


def server_properties(s: Settings) -> str:
    host, port = p.split_hostport(s.kafka_bootstrap, "kafka_bootstrap")
    ctl = f"{host}:{s.kafka_controller_port}"
    props = {
        "node.id": "1",
        "process.roles": "broker,controller",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{ctl}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{ctl}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        # 4.x dynamic quorum: formatted with --standalone, this node is the only voter.
        "controller.quorum.bootstrap.servers": ctl,
        "log.dirs": str(home(s) / "data"),
        "auto.create.topics.enable": "false",  # topics come from the registry, never by accident
        "num.partitions": str(s.topic_partitions),
        # Said, not assumed: the inbox is kept at least this long (settings check it).
        "log.retention.hours": str(24 * KAFKA_TOPIC_RETENTION_DAYS),
        "default.replication.factor": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def java_cmd(s: Settings, main: str, *args: str) -> list[str]:
    heap = s.kafka_heap
    m = re.fullmatch(r"(\d+)([mMgG])", heap)
    if m is None or int(m[1]) * (1024 if m[2] in "gG" else 1) > 1024:
        raise p.ServiceError(f"kafka_heap must be like 768m and at most 1g, got {heap!r}")
    jit = ["-XX:TieredStopAtLevel=1"] if s.kafka_jit == "c1" else []
    return [
        "java", f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", *jit,
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={home(s) / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={home(s) / 'logs'}",
        "-cp", f"{libs_dir(s)}/*",  # java expands the wildcard itself (no shell here)
        main, *args,
    ]  # fmt: skip


def check_tools() -> None:
    if shutil.which("java") is None:
        raise p.ServiceError(
            "java not found: Kafka 4.x needs Java 17+ (apt-get install openjdk-17-jre-headless)"
        )
    out = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    m = re.search(r'version "(\d+)', out)
    if m is None or int(m[1]) < 17:
        raise p.ServiceError(f"Kafka 4.x needs Java 17+, found: {out.strip().splitlines()[:1]}")


def fetch_jars(s: Settings) -> None:
    """Resolve the broker jars from Maven Central once per version (stamp file marks success)."""
    stamp = libs_dir(s) / ".complete"
    if stamp.exists():
        return
    if shutil.which("mvn") is None:
        raise p.ServiceError("mvn not found: it fetches the Kafka jars (apt-get install maven)")
    print(f"kafka: fetching Kafka {s.kafka_version} jars with Maven (once)...", flush=True)
    shutil.rmtree(libs_dir(s), ignore_errors=True)
    p.run(["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
           f"-Dkafka.version={s.kafka_version}", f"-DoutputDirectory={libs_dir(s)}"],
          f"fetching Kafka {s.kafka_version} jars")  # fmt: skip
    stamp.write_text(s.kafka_version + "\n")


def new_cluster_id() -> str:
    """Kafka's Uuid text form: 16 random bytes, url-safe base64 without padding.

    Like Kafka's own Uuid.randomUuid, never one starting with "-": the storage tool's
    argument parser would read it as an option (it happens to 1 id in 64).
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def cluster_id(s: Settings) -> str:
    path = home(s) / "cluster.id"
    stored = path.read_text().strip() if path.exists() else ""
    if not stored or stored.startswith("-"):
        stored = new_cluster_id()
        path.write_text(stored + "\n")
    return stored


def prepare(s: Settings) -> Path:
    """Jars, config files, and a formatted log dir; returns server.properties."""
    check_tools()
    fetch_jars(s)
    (home(s) / "logs").mkdir(parents=True, exist_ok=True)
    props = home(s) / "server.properties"
    props.write_text(server_properties(s))
    (home(s) / "log4j2.properties").write_text(LOG4J2)
    if not (home(s) / "data" / "meta.properties").exists():
        p.run(java_cmd(s, STORAGE_TOOL, "format", "--standalone", f"--cluster-id={cluster_id(s)}",
                       "-c", str(props), "--ignore-formatted"),
              "formatting Kafka storage", timeout=120)  # fmt: skip
    return props


async def probe(bootstrap: str, timeout_s: float = 5.0) -> bool:
    """True when a Kafka broker answers a metadata request at bootstrap."""
    if not p.port_open(*p.split_hostport(bootstrap.split(",")[0], "kafka bootstrap")):
        return False  # skip aiokafka, which logs an error for every refused connection
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(admin.describe_cluster(), timeout_s)
        return True
    except Exception:
        return False
    finally:
        await admin.close()


def status(s: Settings) -> p.ServiceStatus:
    pid = p.read_pid(pid_file(s), marker(s))
    up = p.run_sync(probe(s.kafka_bootstrap))
    detail = f"pid {pid}, Kafka {s.kafka_version}" if pid else ""
    return p.ServiceStatus(NAME, up, up and pid is not None, s.kafka_bootstrap, detail)


def up(s: Settings) -> p.ServiceStatus:
    host, port = p.split_hostport(s.kafka_bootstrap, "kafka_bootstrap")
    pid = p.read_pid(pid_file(s), marker(s))
    if pid is None and p.port_open(host, port):
        if wait_ready(s, None, 15.0, raise_on_timeout=False):
            return status(s)
        raise p.ServiceError(f"port {port} is taken by something that does not speak Kafka")
    if pid is None:
        if p.port_open(host, s.kafka_controller_port):
            raise p.ServiceError(
                f"Kafka controller port {s.kafka_controller_port} is already in use"
            )
        props = prepare(s)
        pid = p.start_detached(java_cmd(s, MAIN_CLASS, str(props)), home(s) / "logs" / "server.out")
        p.write_pid(pid_file(s), pid)
    wait_ready(s, pid, START_TIMEOUT_S)
    return status(s)


def wait_ready(s: Settings, pid: int | None, timeout: float, raise_on_timeout: bool = True) -> bool:
    log = home(s) / "logs" / "server.out"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid is not None and not p.pid_alive(pid):
            pid_file(s).unlink(missing_ok=True)
            raise p.ServiceError(f"Kafka exited during start-up; {log}:\n{p.log_tail(log)}")
        if p.run_sync(probe(s.kafka_bootstrap, 3.0)):
            return True
        time.sleep(1.0)
    if raise_on_timeout:
        raise p.ServiceError(f"Kafka not ready after {timeout:.0f}s; {log}:\n{p.log_tail(log)}")
    return False


def down(s: Settings) -> str:
    if p.stop_pid(pid_file(s), marker(s), timeout=60.0):
        return "kafka: stopped"
    if p.port_open(*p.split_hostport(s.kafka_bootstrap, "kafka_bootstrap")):
        return "kafka: running but not started by payflow; left alone"
    return "kafka: not running"


async def ensure_topics(
    bootstrap: str,
    topics: dict[str, int],
    *,
    connect_timeout_s: float = 10.0,
    ready_within_s: float = READY_WITHIN_S,
) -> list[str]:
    """Create the missing topics (replication 1) and return their names; existing ones are kept.

    Returns only once every topic asked for has a leader for each of its partitions, whoever
    created it: a process that found the topics just created by another (or lost the race to
    create them) used to return while the broker still answered "unknown topic" for them.
    A broker that does not answer within connect_timeout_s raises KafkaTimeoutError (a port
    that accepts connections and never replies would otherwise hang for a long while).
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await asyncio.wait_for(admin.start(), connect_timeout_s)
    except TimeoutError as exc:
        await admin.close()
        raise KafkaTimeoutError(
            f"Kafka at {bootstrap}: no answer within {connect_timeout_s:g} s"
        ) from exc
    except BaseException:
        await admin.close()
        raise
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(n, parts, 1) for n, parts in sorted(topics.items()) if n not in existing
        ]
        created: list[str] = []
        if missing:
            resp = await admin.create_topics(missing)
            for t in resp.to_object()["topic_errors"]:
                if t["error_code"] == 0:
                    created.append(t["topic"])
                elif t["error_code"] != TOPIC_ALREADY_EXISTS:  # lost a race: fine
                    detail = t.get("error_message") or ""
                    raise p.ServiceError(
                        f"creating topic {t['topic']}: error {t['error_code']} {detail}"
                    )
        await _wait_for_leaders(admin, bootstrap, sorted(topics), ready_within_s)
        return created
    finally:
        await admin.close()


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, bootstrap: str, names: list[str], within_s: float
) -> None:
    deadline = time.monotonic() + within_s
    while True:
        waiting = leaderless(await admin.describe_topics(names))
        if not waiting:
            return
        if time.monotonic() > deadline:
            shown = ", ".join(waiting[:5]) + (" ..." if len(waiting) > 5 else "")
            raise p.ServiceError(
                f"Kafka at {bootstrap}: topics without a leader after {within_s:g} s: {shown}"
            )
        await asyncio.sleep(0.1)


def leaderless(described: list[dict[str, Any]]) -> list[str]:
    """The topics of a metadata answer that a client cannot use yet: unknown to the broker
    answering (it learns new topics from the controller a moment later), with no partitions,
    or with a partition that has no leader."""
    return [
        t["topic"]
        for t in described
        if t["error_code"] != 0
        or not t["partitions"]
        or any(part["error_code"] != 0 or part["leader"] < 0 for part in t["partitions"])
    ]


async def delete_topics(
    bootstrap: str, names: list[str], *, connect_timeout_s: float = 10.0
) -> None:
    """Delete these topics (missing ones are ignored) and wait until the metadata no longer
    lists them, as ensure_topics waits for new ones."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await asyncio.wait_for(admin.start(), connect_timeout_s)
        present = [n for n in names if n in set(await admin.list_topics())]
        if not present:
            return
        await asyncio.wait_for(admin.delete_topics(present), connect_timeout_s)
        for _ in range(50):
            if not set(present) & set(await admin.list_topics()):
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
