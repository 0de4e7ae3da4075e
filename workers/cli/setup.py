"""`payflow migrate`: the database schema and the Kafka topics, both idempotent."""

from contracts.topics import all_topic_names
from infra.migrate import migrate
from infra.services.kafka import ensure_topics
from infra.settings import Settings


async def migrate_all(settings: Settings, *, quiet: bool = False) -> int:
    applied = await migrate(settings.dsn)
    if not quiet:
        print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")
    created = await ensure_topics(
        settings.kafka_bootstrap, dict.fromkeys(all_topic_names(), settings.topic_partitions)
    )
    if not quiet:
        print(f"topics created: {', '.join(created) if created else 'none (all exist)'}")
    return 0
