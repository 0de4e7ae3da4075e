"""docker-compose.yml cannot run here (no Docker engine), so check what it says instead."""

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from infra.settings import PROJECT_ROOT, Settings

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
STAGES = [
    "order-build",
    "fund-freeze",
    "gateway-request",
    "callback-handling",
    "settlement",
    "wallet",
]
WORKERS = [*STAGES, "gateway-simulator"]


def default(field: str) -> Any:
    # The declared default, not whatever PAYFLOW_* the test environment happens to set.
    value = Settings.model_fields[field].default
    return value.get_secret_value() if isinstance(value, SecretStr) else value


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict)
    svcs: dict[str, Any] = doc["services"]
    return svcs


def argv(svc: dict[str, Any]) -> list[str]:
    return [*svc.get("entrypoint", []), *svc.get("command", [])]


def image_major(svc: dict[str, Any]) -> int:
    return int(svc["image"].rsplit(":", 1)[1].split(".")[0])


def test_names_every_service(services: dict[str, Any]) -> None:
    expected = {"kafka", "postgres", "redis", "migrate", *WORKERS}
    assert expected <= set(services)


def test_infrastructure_versions(services: dict[str, Any]) -> None:
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert image_major(services["kafka"]) == 4
    assert image_major(services["postgres"]) == 15
    assert image_major(services["redis"]) == 7


def test_kafka_is_kraft_without_auto_creation(services: dict[str, Any]) -> None:
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert not any("ZOOKEEPER" in key for key in env)
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert int(env["KAFKA_NUM_PARTITIONS"]) == default("topic_partitions")


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_runs_its_worker(services: dict[str, Any], stage: str) -> None:
    assert argv(services[stage]) == ["payflow", "run", stage]


def test_simulator_and_migrate_commands(services: dict[str, Any]) -> None:
    assert argv(services["gateway-simulator"]) == ["payflow", "run", "gateway-simulator"]
    assert argv(services["migrate"]) == ["payflow", "migrate"]
    assert services["migrate"].get("restart") == "no"


@pytest.mark.parametrize("name", [*WORKERS, "migrate"])
def test_worker_environment(services: dict[str, Any], name: str) -> None:
    env = services[name]["environment"]
    assert env["PAYFLOW_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert "@postgres:5432/" in env["PAYFLOW_PG_DSN"]
    assert env["PAYFLOW_REDIS_URL"].startswith("redis://redis:6379")
    assert env["PAYFLOW_GATEWAY_URL"].startswith("http://gateway-simulator:")
    assert env["PAYFLOW_GATEWAY_SECRET"] == default("gateway_secret")
    assert int(env["PAYFLOW_TOPIC_PARTITIONS"]) == default("topic_partitions")
    # Health and metrics must be reachable from outside the container to be scraped.
    assert env["PAYFLOW_METRICS_HOST"] == "0.0.0.0"


@pytest.mark.parametrize("name", STAGES)
def test_workers_wait_for_migrations(services: dict[str, Any], name: str) -> None:
    dep = services[name]["depends_on"]["migrate"]
    assert dep["condition"] == "service_completed_successfully"


def test_dockerfile_runs_payflow() -> None:
    text = (Path(PROJECT_ROOT) / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert "pip install ." in text
    assert 'ENTRYPOINT ["payflow"]' in text
