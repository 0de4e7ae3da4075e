"""Which failures are worth retrying, and which send a message to the dead-letter topic."""

import asyncio

import asyncpg
import redis.exceptions
from aiokafka.errors import KafkaError

from contracts.codec import ContractError


class PermanentError(Exception):
    """This message can never succeed as it is: dead-letter it with `code` and `detail`."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class TransientError(Exception):
    """Try again later (a dependency is down or busy); never a business failure."""


_TRANSIENT: tuple[type[BaseException], ...] = (
    TransientError,
    OSError,  # includes ConnectionError
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
    asyncpg.QueryCanceledError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    KafkaError,
)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, _TRANSIENT)


def dead_letter_reason(exc: BaseException) -> tuple[str, str]:
    """(stable code, human detail) for a failure that is not transient."""
    if isinstance(exc, (PermanentError, ContractError)):
        return exc.code, exc.detail
    # A bug or an unexpected state: park the message where an operator sees it rather
    # than blocking its partition; it can be replayed once the cause is fixed.
    return "unhandled_error", f"{type(exc).__name__}: {exc}"
