"""Which failures are worth retrying, and which send a message to the dead-letter topic.

Classified deliberately, class by class: a transient error is an outage or a busy
dependency (retry the batch), anything else can never succeed as it is (dead-letter the
message that causes it). Too permanent and an outage dead-letters good messages; too
transient and one bad message stalls its partition, so each list says why it holds.
"""

import socket

import asyncpg
import redis.exceptions
from aiokafka import errors as kafka

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
    # Network: refused, reset, unreachable, DNS; asyncpg raises a bare OSError when every
    # address of a host refused. TimeoutError is asyncio's too.
    OSError,
    socket.gaierror,
    # Postgres: connection lost or refused, server shutting down (admin / crash shutdown,
    # class 57), out of resources (class 53), and the conflicts a retry resolves.
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # what asyncpg raises mid-protocol after a lost connection
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.LockNotAvailableError,
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    # Kafka errors aiokafka marks retriable are checked by attribute below; these are the
    # outage-shaped ones it does not mark.
    kafka.KafkaTimeoutError,
    kafka.KafkaUnavailableError,
    kafka.BrokerNotAvailableError,
    kafka.ReplicaNotAvailableError,
    kafka.RebalanceInProgressError,
    kafka.ProducerClosed,
)

# Kafka errors that no retry can fix: the message or its destination is wrong.
_KAFKA_PERMANENT: dict[type[kafka.KafkaError], str] = {
    kafka.MessageSizeTooLargeError: "message_too_large",
    kafka.RecordTooLargeError: "record_too_large",
    kafka.RecordListTooLargeError: "record_too_large",
    kafka.TopicAuthorizationFailedError: "topic_authorization_failed",
    kafka.ClusterAuthorizationFailedError: "cluster_authorization_failed",
    kafka.InvalidTopicError: "invalid_topic",
    kafka.CorruptRecordException: "corrupt_record",
    kafka.UnsupportedCodecError: "unsupported_codec",
    kafka.InvalidTimestampError: "invalid_timestamp",
}


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (PermanentError, ContractError)):
        return False
    if isinstance(exc, tuple(_KAFKA_PERMANENT)):
        return False
    if isinstance(exc, kafka.KafkaError):
        return bool(getattr(exc, "retriable", False)) or isinstance(exc, _TRANSIENT)
    return isinstance(exc, _TRANSIENT)


def is_deadlock(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.DeadlockDetectedError)


def error_class(exc: BaseException) -> str:
    """A short, stable label for metrics and logs."""
    return type(exc).__name__


def dead_letter_reason(exc: BaseException) -> tuple[str, str]:
    """(stable code, human detail) for a failure that is not transient."""
    if isinstance(exc, (PermanentError, ContractError)):
        return exc.code, exc.detail
    for cls, code in _KAFKA_PERMANENT.items():
        if isinstance(exc, cls):
            return code, f"{type(exc).__name__}: {exc}"
    if isinstance(exc, kafka.KafkaError):
        return "kafka_error", f"{type(exc).__name__}: {exc}"
    # A bug or an unexpected state: park the message where an operator sees it rather
    # than blocking its partition; it can be replayed once the cause is fixed.
    return "unhandled_error", f"{type(exc).__name__}: {exc}"
