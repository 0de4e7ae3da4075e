"""`payflow run`: stages (one or all) and the gateway simulator, until SIGTERM."""

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from contracts.topics import all_topic_names
from infra.services.kafka import ensure_topics
from infra.settings import DEV_GATEWAY_SECRET, Settings
from workers.app import NEEDS, run_all, run_stages, stop_on_signals
from workers.cli.connect import check_redis
from workers.cli.failures import CliError
from workers.stage_names import STAGE_NAMES

log = structlog.get_logger()
# Set by the demo in its children's environment only: the development secret is expected there.
DEMO_ENV = "PAYFLOW_DEMO"


def uses_dev_secret(settings: Settings, environ: Mapping[str, str]) -> bool:
    """True when the gateway secret is the development default outside the demo."""
    is_default = settings.gateway_secret.get_secret_value() == DEV_GATEWAY_SECRET
    return is_default and environ.get(DEMO_ENV) != "1"


def warn_dev_secret(what: str) -> None:
    # The value itself is never printed, only the fact that it is the public default.
    log.warning(
        "dev_gateway_secret",
        worker=what,
        detail="PAYFLOW_GATEWAY_SECRET is the development default; callbacks signed with it "
        "can be forged by anyone who has read this code",
    )
    print(
        "WARNING: PAYFLOW_GATEWAY_SECRET is the development default; set it to the gateway's "
        "real signing secret before taking real payments",
        file=sys.stderr,
        flush=True,
    )


@dataclass(frozen=True)
class SimulatorOptions:
    """`payflow run gateway-simulator --fault NAME=RATE --seed N --host H`."""

    faults: tuple[str, ...] = ()
    seed: int | None = None
    host: str | None = None

    @property
    def given(self) -> bool:
        return bool(self.faults) or self.seed is not None or self.host is not None


def health_port(settings: Settings, what: str) -> int:
    """`run all` answers on PAYFLOW_METRICS_PORT, a single stage on the ports after it."""
    return settings.metrics_port + (0 if what == "all" else 1 + STAGE_NAMES.index(what))


async def run(what: str, settings: Settings, sim: SimulatorOptions | None = None) -> int:
    if what == "gateway_simulator":
        # A third party: it needs no Kafka, and its callbacks go to our webhook.
        from workers.gateway_simulator.config import load_config
        from workers.gateway_simulator.faults import parse_faults
        from workers.gateway_simulator.main import serve

        sim = sim or SimulatorOptions()
        try:
            config = load_config(
                settings, faults=parse_faults(sim.faults), seed=sim.seed, host=sim.host
            )
        except ValueError as exc:
            raise CliError(f"gateway-simulator: {exc}") from None
        if uses_dev_secret(settings, os.environ):
            warn_dev_secret(what)
        await serve(config, stop_on_signals())
        return 0
    if uses_dev_secret(settings, os.environ):
        warn_dev_secret(what)
    # Topics exist before anyone subscribes or publishes (auto-creation is off); idempotent.
    await ensure_topics(
        settings.kafka_bootstrap,
        dict.fromkeys(all_topic_names(), settings.topic_partitions),
        connect_timeout_s=settings.connect_timeout_s,
    )
    if what == "webhook":
        from workers.webhook.serve import serve as serve_webhook

        await serve_webhook(settings, stop_on_signals())
        return 0
    if what == "sweeper":
        from workers.sweeper.serve import serve as serve_sweeper

        await serve_sweeper(settings, stop_on_signals())
        return 0
    names = list(STAGE_NAMES) if what == "all" else [what]
    if any("redis" in NEEDS.get(n, frozenset()) for n in names):
        await check_redis(settings)  # fail at start with one line, not at the first callback
    # One health/metrics port per process: a single stage takes the base port + its index.
    port = health_port(settings, what)
    if what == "all":
        await run_all(settings, stop_on_signals(), port)
        return 0
    await run_stages(names, settings, stop_on_signals(), health_port=port)
    return 0
