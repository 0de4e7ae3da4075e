from tests.support.services import pool, producer, redis, services

__all__ = ["pool", "producer", "redis", "services"]
