"""The Postgres connection pool every worker shares."""

import asyncpg

from infra.settings import Settings


async def create_pool(settings: Settings, *, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        settings.dsn,
        min_size=1,
        max_size=max_size,
        command_timeout=30,
        server_settings={"application_name": "payflow"},
    )
    assert pool is not None
    return pool
