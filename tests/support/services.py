"""Session fixtures: the real Kafka, Postgres and Redis, a fresh database and topics."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from redis.asyncio import Redis

from contracts.topics import all_topic_names
from infra.services import manager
from infra.settings import Settings, get_settings
from workers.cli.setup import migrate_all
from workers.runtime.db import create_pool
from workers.runtime.kafka import make_producer


async def _create_database(settings: Settings) -> None:
    admin = await asyncpg.connect(settings.dsn.rsplit("/", 1)[0] + "/postgres")
    try:
        exists = await admin.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", settings.pg_database
        )
        if not exists:
            await admin.execute(f'CREATE DATABASE "{settings.pg_database}"')
    finally:
        await admin.close()


async def _drop_database(settings: Settings) -> None:
    admin = await asyncpg.connect(settings.dsn.rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{settings.pg_database}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest_asyncio.fixture(scope="session")
async def services() -> AsyncIterator[Settings]:
    """Kafka, Postgres and Redis up (reused when already running), a database and topic
    namespace of this session's own; both removed at the end."""
    settings = get_settings()
    await asyncio.to_thread(manager.up, settings)
    await _create_database(settings)
    await migrate_all(settings, quiet=True)
    yield settings
    await _drop_database(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(all_topic_names())
    finally:
        await admin.close()


@pytest_asyncio.fixture(scope="session")
async def pool(services: Settings) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(services, max_size=20)
    yield p
    await p.close()


@pytest_asyncio.fixture
async def conn(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection inside a transaction that is rolled back at the end: what a test plants
    there is never seen by the other tests (their sweepers, their audits)."""
    async with pool.acquire() as c:
        tx = c.transaction()
        await tx.start()
        try:
            yield c
        finally:
            await tx.rollback()


@pytest_asyncio.fixture(scope="session")
async def producer(services: Settings) -> AsyncIterator[AIOKafkaProducer]:
    p = make_producer(services, "payflow-tests")
    await p.start()
    yield p
    await p.stop()


@pytest_asyncio.fixture(scope="session")
async def redis(services: Settings) -> AsyncIterator[Redis]:
    r = Redis.from_url(services.redis_url)
    yield r
    await r.aclose()


integration = pytest.mark.integration


async def create_scratch(services: Settings, suffix: str) -> Settings:
    """A migrated database of its own (the settings that point at it): for tests that leave
    audit violations behind on purpose, so the session's shared database stays audit-clean
    for every other test. Drop it with `drop_scratch`."""
    settings = services.model_copy(update={"pg_database": f"{services.pg_database}_{suffix}"})
    await _create_database(settings)
    await migrate_all(settings, quiet=True)
    return settings


async def drop_scratch(settings: Settings) -> None:
    await _drop_database(settings)


@asynccontextmanager
async def scratch_database(services: Settings, suffix: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a scratch database (`create_scratch`), dropped afterwards."""
    settings = await create_scratch(services, suffix)
    p = await create_pool(settings, max_size=10)
    try:
        yield p
    finally:
        await p.close()
        await drop_scratch(settings)
