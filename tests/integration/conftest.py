from tests.support.services import conn, pool, producer, redis, services

__all__ = ["conn", "pool", "producer", "redis", "services"]
