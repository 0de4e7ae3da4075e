"""Configuration, read from PAYFLOW_* environment variables (pydantic-settings)."""

from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The development default of PAYFLOW_GATEWAY_SECRET: workers warn loudly when it is in use.
DEV_GATEWAY_SECRET = "dev-gateway-secret"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYFLOW_", extra="ignore")

    # Where local services keep their data, logs and pid files (git-ignored).
    state_dir: Path = PROJECT_ROOT / ".payflow"

    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_controller_port: int = 19093
    kafka_version: str = "4.1.1"
    kafka_heap: str = "768m"
    topic_partitions: int = 6

    pg_host: str = "127.0.0.1"
    pg_port: int = 15432
    pg_user: str = "payflow"
    pg_database: str = "payflow"
    # When set and answering, this server is used instead of starting a local one.
    pg_dsn: str | None = None

    redis_url: str = "redis://127.0.0.1:16379/0"

    gateway_url: str = "http://127.0.0.1:18080"
    # Shared secret the gateway signs callbacks with (HMAC-SHA256). Never logged.
    gateway_secret: SecretStr = SecretStr(DEV_GATEWAY_SECRET)

    # Health and metrics: loopback unless told otherwise (docker-compose binds 0.0.0.0).
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 19100
    # A stage with lag and no progress for this long is reported stuck (503).
    stuck_after_s: float = 60.0
    # How often lag (broker high-water marks) and Kafka/Postgres/Redis reachability are probed.
    health_probe_interval_s: float = 5.0
    # Connection attempts (CLI and workers) give up after this long.
    connect_timeout_s: float = 5.0
    # Identical log lines repeated within this many seconds are collapsed into one with a count.
    log_collapse_s: float = 10.0
    # Upstream idempotency keys (envelope.idempotency_key of orders.submitted) are kept this long.
    idempotency_retention_h: int = 168
    # Total retry budget for one batch; must stay well below max_poll_interval_ms.
    retry_budget_s: float = 30.0
    max_poll_interval_ms: int = 300_000
    # How long before a dead consumer's partitions move to a live one.
    session_timeout_ms: int = 10_000
    batch_max_records: int = 200

    log_level: str = "INFO"

    @property
    def dsn(self) -> str:
        if self.pg_dsn:
            return self.pg_dsn
        return f"postgresql://{self.pg_user}@{self.pg_host}:{self.pg_port}/{self.pg_database}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
