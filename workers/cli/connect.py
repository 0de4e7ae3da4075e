"""Kafka and Redis clients for commands, started within settings.connect_timeout_s.

A broker or server that refuses or never answers ends the command with one line (see
workers.cli.errors) instead of a long wait; Postgres has the same in workers.runtime.db.
"""

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError
from redis.asyncio import Redis

from infra.settings import Settings
from workers.runtime.kafka import make_producer


async def start_producer(settings: Settings, client_id: str) -> AIOKafkaProducer:
    producer = make_producer(settings, client_id)
    try:
        await asyncio.wait_for(producer.start(), settings.connect_timeout_s)
    except TimeoutError as exc:
        await producer.stop()
        raise KafkaTimeoutError(
            f"Kafka at {settings.kafka_bootstrap}: no answer within "
            f"{settings.connect_timeout_s:g} s"
        ) from exc
    except BaseException:
        await producer.stop()
        raise
    return producer


async def check_redis(settings: Settings) -> None:
    """PING Redis once; raises redis ConnectionError or TimeoutError when it does not answer."""
    timeout = settings.connect_timeout_s
    client = Redis.from_url(
        settings.redis_url, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        await client.ping()
    finally:
        await client.aclose()
