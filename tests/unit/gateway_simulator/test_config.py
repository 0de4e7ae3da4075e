"""Configuration from settings, PAYFLOW_SIM_* and the CLI's overrides."""

from pathlib import Path

import pytest

from infra.settings import Settings
from workers.gateway_simulator.config import default_db_path, is_loopback, load_config


def _settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path, gateway_url="http://127.0.0.1:18123")


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYFLOW_TOPIC_NAMESPACE", "ns1")
    cfg = load_config(_settings(tmp_path), env={})
    assert (cfg.host, cfg.port, cfg.loopback) == ("127.0.0.1", 18123, True)
    assert cfg.db_path == tmp_path / "gateway-simulator" / "ns1" / "simulator.sqlite3"
    assert cfg.db_path == default_db_path(_settings(tmp_path))
    t = cfg.timings
    assert (t.callback_delay_ms, t.latency_ms, t.hang_ms, t.late_ms, t.key_retention_h) == (
        20,
        1_500,
        30_000,
        5_000,
        48,
    )
    assert (dict(cfg.faults.rates), cfg.faults.seed) == ({}, 0)


def test_env_and_cli_overrides(tmp_path: Path) -> None:
    env = {
        "PAYFLOW_SIM_FAULTS": "latency=0.5,lost_callback=1",
        "PAYFLOW_SIM_SEED": "3",
        "PAYFLOW_SIM_HOST": "0.0.0.0",
        "PAYFLOW_SIM_DB": str(tmp_path / "x.sqlite3"),
        "PAYFLOW_SIM_LATE_MS": "100",
    }
    cfg = load_config(_settings(tmp_path), env=env)
    assert (cfg.host, cfg.loopback, cfg.faults.seed) == ("0.0.0.0", False, 3)
    assert cfg.db_path == tmp_path / "x.sqlite3" and cfg.timings.late_ms == 100
    cli = load_config(_settings(tmp_path), faults={"latency": 0.1}, seed=9, host="::1", env=env)
    assert dict(cli.faults.rates) == {"latency": 0.1, "lost_callback": 1.0}
    assert (cli.faults.seed, cli.host, cli.loopback) == (9, "::1", True)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PAYFLOW_SIM_KEY_RETENTION_H", "12", "PAYFLOW_SIM_KEY_RETENTION_H must be >= 24"),
        ("PAYFLOW_SIM_CALLBACK_DELAY_MS", "soon", "PAYFLOW_SIM_CALLBACK_DELAY_MS must be a whole"),
        ("PAYFLOW_SIM_SEED", "x", "PAYFLOW_SIM_SEED must be an integer"),
        ("PAYFLOW_SIM_FAULTS", "bogus=1", "PAYFLOW_SIM_FAULTS: unknown fault 'bogus'"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_config(_settings(tmp_path), env={name: value})


def test_loopback() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "127.0.0.5"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "10.0.0.1", "example.com"))
