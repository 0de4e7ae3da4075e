"""Configuration, read from PAYFLOW_* environment variables (pydantic-settings)."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The development default of PAYFLOW_GATEWAY_SECRET: workers warn loudly when it is in use.
DEV_GATEWAY_SECRET = "dev-gateway-secret"
DEV_GATEWAY_API_KEY = "dev-gateway-api-key"
# How long our topics keep a message: infra/services/kafka.py sets log.retention.hours from it
# (Kafka's default too, as with docker-compose.yml). Any event can come again that long (a
# consumer group without offsets starts at the earliest one), so the inbox must outlive it.
KAFKA_TOPIC_RETENTION_DAYS = 7

# Millisecond settings bounded from 0 to a ceiling, with what 0 means.
_MS_BOUNDS: dict[str, tuple[int, str]] = {
    "batch_linger_ms": (1_000, "never"),
    "commit_interval_ms": (60_000, "every batch"),
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYFLOW_", extra="ignore")

    # Where local services keep their data, logs and pid files (git-ignored).
    state_dir: Path = PROJECT_ROOT / ".payflow"

    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_controller_port: int = 19093
    kafka_version: str = "4.1.1"
    kafka_heap: str = "768m"
    # The local broker's JIT: "c1" compiles with the quick compiler only; "tiered" is the
    # JVM's default (C1, then C2 for hot code). On two shared cores C2 spent about a third of
    # the broker's CPU compiling for many minutes after a start (docs/performance.md, step 41).
    kafka_jit: Literal["c1", "tiered"] = "c1"
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
    # The id the gateway sends with callbacks signed by gateway_secret (Payflow-Key-Id).
    gateway_key_id: str = "k1"
    # A second key accepted during a rotation: set both, then drop them once the gateway
    # signs with the new one.
    gateway_previous_key_id: str | None = None
    gateway_previous_secret: SecretStr | None = None
    # Our API key at the gateway (Authorization: Bearer): no anonymous charges or payouts.
    gateway_api_key: SecretStr = SecretStr(DEV_GATEWAY_API_KEY)
    # Which adapter serves which payment method: "method=adapter,..." (adapters: direct,
    # redirect). A method not listed is refused at order build.
    gateway_routes: str = "card=direct,qr=redirect"
    # One gateway HTTP call gives up after this long; the outcome is then unknown.
    gateway_timeout_s: float = 10.0
    # Calls with the same idempotency key before a payment is recorded as unknown.
    gateway_attempts: int = 3
    # The webhook endpoint (payflow run webhook serves it); a gateway posts to <url>/<provider>.
    webhook_url: str = "http://127.0.0.1:18090/webhooks"
    # Callbacks signed further than this from now (either way) are refused.
    callback_tolerance_s: int = 300
    webhook_max_body_bytes: int = 16_384
    # Days the webhook keeps a callback's receipt (its replay protection) and a refused
    # callback's record (for operators) before pruning them. A receipt is pruned by its signed
    # timestamp, so it must outlive callback_tolerance_s: by then a replay of that callback is
    # refused as stale; pruned any sooner, the replay would be accepted as new (validated).
    # A week also outlasts a gateway re-signing a callback whose 200 it lost (days of retries).
    webhook_retention_days: int = 7
    # An order not paid within this window is cancelled (holds released, gateway voided).
    payment_window_s: int = 900
    # A pending payment with no callback this long after its request is asked about.
    callback_grace_s: float = 60.0
    # Seconds between status queries for an unresolved payment; after the last one it goes
    # to manual review (Kill Bill's janitor: minutes, an hour, then daily).
    sweeper_schedule_s: str = "60,300,3600,86400,86400"
    # How often the sweeper looks for due work.
    sweeper_interval_s: float = 5.0
    # How often the sweeper reads the gateway's statement for today and yesterday and decides
    # each charge of ours no callback or query told us of (a second charge whose callbacks
    # were lost after the payment was decided is seen nowhere else). 0 turns it off.
    statement_sweep_s: float = 3600.0
    # Money the buyer paid that we did not sell for (a success after the order was cancelled,
    # a second charge): "refund" returns it through the gateway, "review" holds it for a human.
    late_payment_action: str = "refund"
    # A refund the gateway still calls pending this long after we sent it goes to manual
    # review (card refunds can take days at the bank; asked on a growing interval till then).
    refund_review_after_s: int = 7 * 86_400

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
    # Days the inbox, published outbox rows and finished dead letters are kept before pruning
    # (workers/runtime/retention.py). The inbox is what makes a redelivered event a no-op, so
    # this is never shorter than our topics keep a message (validated).
    retention_days: int = 7
    # How often the sweeper prunes them; 0: never (run `payflow prune` instead).
    retention_interval_s: float = 600.0
    # Total retry budget for one batch; must stay well below max_poll_interval_ms.
    retry_budget_s: float = 30.0
    max_poll_interval_ms: int = 300_000
    # How long before a dead consumer's partitions move to a live one.
    session_timeout_ms: int = 10_000
    batch_max_records: int = 200
    # A poll that brings a few records but not a quarter of a batch waits up to this long for
    # a quarter: a stage fed a record at a time under load (callback handling, behind the
    # webhook) otherwise pays a batch's fixed costs for a handful of events. A poll of one
    # record (an idle system) never waits. 0: never.
    batch_linger_ms: int = 30
    # A stage commits its consumed offsets to Kafka at most this often, and whenever it is
    # caught up, gives partitions up or stops: a commit costs the broker about a millisecond
    # of CPU, and a batch's effects are already safe in Postgres (a crash redelivers what
    # was not committed, and the inbox makes that a re-publish). 0: after every batch.
    commit_interval_ms: int = 1_000

    log_level: str = "INFO"

    @field_validator("gateway_routes")
    @classmethod
    def _routes_parse(cls, value: str) -> str:
        parse_routes(value)
        return value

    @field_validator("sweeper_schedule_s")
    @classmethod
    def _schedule_parses(cls, value: str) -> str:
        parse_schedule(value)
        return value

    @field_validator("retention_days")
    @classmethod
    def _retention_covers_redelivery(cls, value: int) -> int:
        check_retention_days(value)
        return value

    @field_validator("retention_interval_s")
    @classmethod
    def _interval_not_negative(cls, value: float) -> float:
        if value < 0:
            raise ValueError(f"must be 0 (never) or a positive number of seconds, got {value:g}")
        return value

    @field_validator(*_MS_BOUNDS)
    @classmethod
    def _milliseconds_bounded(cls, value: int, info: ValidationInfo) -> int:
        top, zero_means = _MS_BOUNDS[str(info.field_name)]
        if not 0 <= value <= top:
            raise ValueError(f"must be 0 ({zero_means}) to {top} milliseconds, got {value}")
        return value

    @field_validator("late_payment_action")
    @classmethod
    def _known_action(cls, value: str) -> str:
        if value not in ("refund", "review"):
            raise ValueError(f"must be refund or review, got {value!r}")
        return value

    @model_validator(mode="after")
    def _receipts_outlive_tolerance(self) -> "Settings":
        if self.webhook_retention_days < 1:
            raise ValueError("webhook_retention_days must be at least 1")
        if self.webhook_retention_days * 86_400 < self.callback_tolerance_s:
            raise ValueError(
                f"webhook_retention_days ({self.webhook_retention_days}) must cover "
                f"callback_tolerance_s ({self.callback_tolerance_s} s): a callback whose receipt "
                "was pruned while its timestamp is still accepted could be replayed"
            )
        return self

    @property
    def signing_keys(self) -> dict[str, str]:
        """Key id -> secret for every callback signing key that is active."""
        keys = {self.gateway_key_id: self.gateway_secret.get_secret_value()}
        if self.gateway_previous_key_id and self.gateway_previous_secret:
            keys[self.gateway_previous_key_id] = self.gateway_previous_secret.get_secret_value()
        return keys

    @property
    def routes(self) -> dict[str, str]:
        return parse_routes(self.gateway_routes)

    @property
    def sweeper_schedule(self) -> list[float]:
        return parse_schedule(self.sweeper_schedule_s)

    @property
    def dsn(self) -> str:
        if self.pg_dsn:
            return self.pg_dsn
        return f"postgresql://{self.pg_user}@{self.pg_host}:{self.pg_port}/{self.pg_database}"


ADAPTERS = ("direct", "redirect")


def parse_routes(value: str) -> dict[str, str]:
    """ "card=direct,qr=redirect" -> {"card": "direct", "qr": "redirect"}."""
    routes: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        method, sep, adapter = (x.strip() for x in part.partition("="))
        if not sep or not method or adapter not in ADAPTERS:
            raise ValueError(f"{part!r} is not method=adapter with adapter one of {ADAPTERS}")
        routes[method] = adapter
    if not routes:
        raise ValueError("names no route")
    return routes


def check_retention_days(days: int) -> None:
    """Refuse a retention under which a redelivered event could find no inbox row (and be
    applied twice)."""
    if days < 1:
        raise ValueError(f"must be a whole number of days, at least 1, got {days}")
    if days < KAFKA_TOPIC_RETENTION_DAYS:
        raise ValueError(
            f"{days} day(s) is shorter than our Kafka topics keep a message "
            f"({KAFKA_TOPIC_RETENTION_DAYS} days): an event redelivered after its inbox row was "
            "pruned would be applied twice"
        )


def parse_schedule(value: str) -> list[float]:
    """ "60,300,3600" -> [60.0, 300.0, 3600.0]: seconds between successive status queries."""
    try:
        steps = [float(p) for p in value.split(",") if p.strip()]
    except ValueError:
        raise ValueError(f"{value!r} is not a comma-separated list of seconds") from None
    if not steps or any(s <= 0 for s in steps):
        raise ValueError(f"{value!r} must list at least one positive number of seconds")
    return steps


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
