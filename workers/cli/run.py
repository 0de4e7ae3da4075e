"""`payflow run`: stages (one or all) and the gateway simulator, until SIGTERM."""

from contracts.topics import all_topic_names
from infra.services.kafka import ensure_topics
from infra.settings import Settings
from workers.app import STAGE_NAMES, run_stages, stop_on_signals


async def run(what: str, settings: Settings) -> int:
    # Topics exist before anyone subscribes or publishes (auto-creation is off); idempotent.
    await ensure_topics(
        settings.kafka_bootstrap, dict.fromkeys(all_topic_names(), settings.topic_partitions)
    )
    if what == "gateway_simulator":
        from workers.gateway_simulator.main import serve

        await serve(settings)
        return 0
    names = list(STAGE_NAMES) if what == "all" else [what]
    # One health/metrics port per process: a single stage takes the base port + its index.
    port = settings.metrics_port + (0 if what == "all" else 1 + STAGE_NAMES.index(what))
    await run_stages(names, settings, stop_on_signals(), health_port=port)
    return 0
