"""`payflow migrate`: the database (created when missing), its schema and the Kafka topics,
all idempotent."""

from contracts.topics import all_topic_names
from infra.migrate import database_name, ensure_database, migrate
from infra.services.kafka import ensure_topics
from infra.settings import Settings
from workers.runtime.db import unreachable


async def migrate_all(settings: Settings, *, quiet: bool = False) -> int:
    timeout = settings.connect_timeout_s
    try:
        created_db = await ensure_database(settings.dsn, timeout_s=timeout)
        applied = await migrate(settings.dsn, timeout_s=timeout)
    except OSError as exc:  # refused, unreachable, no answer in time
        raise unreachable(settings.dsn, exc, timeout) from exc
    if not quiet:
        if created_db:
            print(f"database created: {database_name(settings.dsn)}")
        print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")
    created = await ensure_topics(
        settings.kafka_bootstrap,
        dict.fromkeys(all_topic_names(), settings.topic_partitions),
        connect_timeout_s=timeout,
    )
    if not quiet:
        print(f"topics created: {', '.join(created) if created else 'none (all exist)'}")
    return 0
