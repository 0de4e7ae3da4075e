"""The generated service configuration, checked without starting anything."""

import os
import uuid
from pathlib import Path

import pytest

from infra.services import kafka, postgres, process, redis
from infra.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        state_dir=tmp_path,
        kafka_bootstrap="127.0.0.1:29092",
        kafka_controller_port=29093,
        kafka_version="4.1.1",
        kafka_heap="512m",
        topic_partitions=6,
        pg_host="127.0.0.1",
        pg_port=25432,
        redis_url="redis://127.0.0.1:26379/0",
    )


def props(s: Settings) -> dict[str, str]:
    lines = kafka.server_properties(s).splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_kafka_kraft_combined_single_node(settings: Settings) -> None:
    p = props(settings)
    assert p["node.id"] == "1"
    assert p["process.roles"] == "broker,controller"
    assert p["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert p["controller.listener.names"] == "CONTROLLER"
    assert p["controller.quorum.bootstrap.servers"] == "127.0.0.1:29093"
    assert not any("zookeeper" in key for key in p)


def test_kafka_single_node_replication_and_topics(settings: Settings) -> None:
    p = props(settings)
    assert p["auto.create.topics.enable"] == "false"
    assert p["num.partitions"] == "6"
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                "transaction.state.log.min.isr", "default.replication.factor"):  # fmt: skip
        assert p[key] == "1", key
    assert p["group.initial.rebalance.delay.ms"] == "0"
    assert Path(p["log.dirs"]).is_relative_to(settings.state_dir)


def test_kafka_java_command(settings: Settings) -> None:
    cmd = kafka.java_cmd(settings, kafka.MAIN_CLASS, "server.properties")
    assert cmd[0] == "java"
    assert "-Xmx512m" in cmd and "-Xms512m" in cmd
    assert cmd[cmd.index("-cp") + 1] == f"{settings.state_dir}/kafka/libs-4.1.1/*"
    assert cmd[-2:] == ["kafka.Kafka", "server.properties"]


def test_kafka_jit_is_the_quick_compiler_unless_asked(settings: Settings) -> None:
    assert "-XX:TieredStopAtLevel=1" in kafka.java_cmd(settings, kafka.MAIN_CLASS)
    settings.kafka_jit = "tiered"
    assert not any("Tiered" in arg for arg in kafka.java_cmd(settings, kafka.MAIN_CLASS))


@pytest.mark.parametrize("heap", ["2g", "1025m", "lots"])
def test_kafka_heap_is_capped_at_one_gib(settings: Settings, heap: str) -> None:
    settings.kafka_heap = heap
    with pytest.raises(process.ServiceError):
        kafka.java_cmd(settings, kafka.MAIN_CLASS)


def test_kafka_bootstrap_without_port_is_a_clear_error(settings: Settings) -> None:
    settings.kafka_bootstrap = "127.0.0.1"
    with pytest.raises(process.ServiceError, match="no port"):
        kafka.server_properties(settings)


def test_redis_args(settings: Settings) -> None:
    args = redis.server_args(settings)
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    assert pairs["--bind"] == "127.0.0.1"
    assert pairs["--port"] == "26379"
    assert pairs["--save"] == ""
    assert pairs["--appendonly"] == "no"
    assert pairs["--daemonize"] == "no"
    assert Path(pairs["--dir"]).is_relative_to(settings.state_dir)


def test_redis_url_without_port(settings: Settings) -> None:
    settings.redis_url = "redis://127.0.0.1/0"
    with pytest.raises(process.ServiceError):
        redis.server_args(settings)


def test_pg_conf(settings: Settings) -> None:
    conf = dict(line.split(" = ", 1) for line in postgres.pg_conf(settings).splitlines())
    assert conf["listen_addresses"] == "'127.0.0.1'"
    assert conf["port"] == "25432"
    assert conf["shared_buffers"] == "256MB"
    assert conf["max_connections"] == "200"
    assert conf["fsync"] == "on"
    assert conf["synchronous_commit"] == "on"
    sock_dir = Path(conf["unix_socket_directories"].strip("'"))
    assert sock_dir.is_relative_to(settings.state_dir)


def test_pg_hba_trusts_only_loopback() -> None:
    rules = [line.split() for line in postgres.hba_conf().splitlines()]
    hosts = [r[3] for r in rules if r[0] == "host"]
    assert sorted(hosts) == ["127.0.0.1/32", "::1/128"]
    assert all(r[-1] == "trust" for r in rules)


def test_pid_files(tmp_path: Path) -> None:
    path = tmp_path / "run" / "x.pid"
    process.write_pid(path, os.getpid())
    assert process.read_pid(path) == os.getpid()
    assert process.read_pid(path, marker="no-such-command-line") is None
    assert not path.exists()  # stale (or reused pid) files are removed


def test_status_line() -> None:
    up = process.ServiceStatus("kafka", True, False, "127.0.0.1:19092", "x")
    assert up.line().split()[:4] == ["kafka", "up", "foreign", "127.0.0.1:19092"]
    down = process.ServiceStatus("redis", False, False, "127.0.0.1:16379")
    assert down.line().split()[:2] == ["redis", "down"]


def test_cluster_ids_never_look_like_an_option(monkeypatch: pytest.MonkeyPatch) -> None:
    # The storage tool's argument parser reads "-xyz" as an option; CI once drew such an id.
    dashed = iter([bytes([0xFB]) + bytes(15), bytes(16)])
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(bytes=next(dashed)))
    text = kafka.new_cluster_id()
    assert text == "A" * 22


def test_stored_dashed_cluster_id_is_replaced(settings: Settings) -> None:
    path = kafka.home(settings) / "cluster.id"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("-5CATtZhRcWMWE368iTJfw\n")
    fresh = kafka.cluster_id(settings)
    assert not fresh.startswith("-") and len(fresh) == 22
    assert kafka.cluster_id(settings) == fresh


@pytest.mark.parametrize("linger", [-1, 1_001])
def test_batch_linger_out_of_bounds_is_refused(linger: int) -> None:
    with pytest.raises(ValueError, match="0 \\(never\\) to 1000 milliseconds"):
        Settings(batch_linger_ms=linger)


@pytest.mark.parametrize("interval", [-1, 60_001])
def test_commit_interval_out_of_bounds_is_refused(interval: int) -> None:
    with pytest.raises(ValueError, match="0 \\(every batch\\) to 60000 milliseconds"):
        Settings(commit_interval_ms=interval)
