"""The simulator's configuration: settings, PAYFLOW_SIM_* variables and CLI overrides.

Every variable is documented in docs/gateway-simulator.md. A bad value raises ValueError
naming the variable, which the CLI prints as one line.
"""

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from contracts.topics import namespace
from infra.settings import Settings
from workers.gateway_simulator.faults import Faults, parse_fault_list
from workers.runtime.urls import listen_address

MIN_KEY_RETENTION_H = 24


@dataclass(frozen=True)
class Timings:
    callback_delay_ms: int = 20
    latency_ms: int = 1_500
    hang_ms: int = 30_000
    late_ms: int = 5_000
    retry_initial_ms: int = 200
    retry_max_ms: int = 10_000
    key_retention_h: int = 48


# Attribute of Timings -> its environment variable.
TIMING_ENV = {
    "callback_delay_ms": "PAYFLOW_SIM_CALLBACK_DELAY_MS",
    "latency_ms": "PAYFLOW_SIM_LATENCY_MS",
    "hang_ms": "PAYFLOW_SIM_HANG_MS",
    "late_ms": "PAYFLOW_SIM_LATE_MS",
    "retry_initial_ms": "PAYFLOW_SIM_RETRY_INITIAL_MS",
    "retry_max_ms": "PAYFLOW_SIM_RETRY_MAX_MS",
    "key_retention_h": "PAYFLOW_SIM_KEY_RETENTION_H",
}


@dataclass(frozen=True)
class SimConfig:
    host: str
    port: int
    db_path: Path
    public_url: str  # where buyers reach pay_url (settings.gateway_url)
    webhook_url: str
    key_id: str
    secret: str
    api_key: str
    timings: Timings
    faults: Faults

    @property
    def sim_dir(self) -> Path:
        return self.db_path.parent

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_db_path(settings: Settings) -> Path:
    return (
        settings.state_dir / "gateway-simulator" / (namespace() or "default") / "simulator.sqlite3"
    )


def _int_env(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def timings_from_env(env: Mapping[str, str]) -> Timings:
    base = Timings()
    values = {
        attr: _int_env(
            env,
            var,
            getattr(base, attr),
            MIN_KEY_RETENTION_H if attr == "key_retention_h" else 0,
        )
        for attr, var in TIMING_ENV.items()
    }
    return Timings(**values)


def load_config(
    settings: Settings,
    *,
    faults: Mapping[str, float] | None = None,
    seed: int | None = None,
    host: str | None = None,
    env: Mapping[str, str] | None = None,
) -> SimConfig:
    """Settings and environment, with the CLI's --fault/--seed/--host taking precedence."""
    env = os.environ if env is None else env
    try:
        rates = parse_fault_list(env.get("PAYFLOW_SIM_FAULTS", ""))
    except ValueError as exc:
        raise ValueError(f"PAYFLOW_SIM_FAULTS: {exc}") from None
    rates.update(faults or {})
    if seed is None:
        raw_seed = env.get("PAYFLOW_SIM_SEED", "").strip() or "0"
        try:
            seed = int(raw_seed)
        except ValueError:
            raise ValueError(f"PAYFLOW_SIM_SEED must be an integer, got {raw_seed!r}") from None
    db = env.get("PAYFLOW_SIM_DB", "").strip()
    return SimConfig(
        host=host or env.get("PAYFLOW_SIM_HOST", "").strip() or "127.0.0.1",
        # We serve the URL our stages call.
        port=listen_address(settings.gateway_url, "PAYFLOW_GATEWAY_URL").port,
        db_path=Path(db) if db else default_db_path(settings),
        public_url=settings.gateway_url.rstrip("/"),
        webhook_url=settings.webhook_url.rstrip("/"),
        key_id=settings.gateway_key_id,
        secret=settings.gateway_secret.get_secret_value(),
        api_key=settings.gateway_api_key.get_secret_value(),
        timings=timings_from_env(env),
        faults=Faults(rates, seed),
    )
